// A scorer forked by the preload mode's loaded process: not mlserve's child, so its exit comes from the
// loader's report, and a loader that does not report in time is found frozen.
import {sleep} from '../util/abort.js'
import {createDeferred} from '../util/deferred.js'
import type {ExitInfo, ScorerHandle} from './process.js'

/**
 * How long the loaded process may take to answer a fork request or report a killed fork's exit (it does
 * both in milliseconds). Past it, it is frozen (SIGSTOP, a deadlock): it is killed, so its slots come back
 * with a new one instead of waiting for it forever.
 */
export const LOADER_REPLY_MS = 10_000

/** What a fork needs of the process it was forked from. */
export interface ForkParent {
  readonly process: {stderrTail(lines?: number): string}
  /** It did not do `what` within LOADER_REPLY_MS: it is killed (which settles its forks). */
  unresponsive(what: string): void
}

/** A scorer forked by the loaded process: not mlserve's child, so the loader reports its exit. */
export class ForkedScorer implements ScorerHandle {
  private exit: ExitInfo | undefined
  /** Its own last words, when its parent reported them (its output is shared with its siblings'). */
  private lastError: string | undefined
  private readonly ended = createDeferred<ExitInfo>()
  readonly exited = this.ended.promise

  constructor(
    readonly pid: number,
    private readonly loader: ForkParent,
  ) {}

  get running(): boolean {
    return this.exit === undefined
  }

  /** Called with the loader's report (or when the loader itself is gone: the kernel killed its forks). */
  settle(exit: ExitInfo, error?: string): void {
    if (this.exit) return
    this.exit = exit
    this.lastError = error
    this.ended.resolve(exit)
  }

  stderrTail(lines = 20): string {
    return this.lastError ?? this.loader.process.stderrTail(lines)
  }

  async stop(graceMs: number, cutShort?: AbortSignal): Promise<ExitInfo> {
    if (!this.running) return this.exited
    this.signal('SIGTERM')
    const wait = new AbortController()
    const timedOut = sleep(graceMs, AbortSignal.any([wait.signal, ...(cutShort ? [cutShort] : [])])).then(() => 'timeout' as const)
    const first = await Promise.race([this.exited, timedOut])
    wait.abort()
    if (first !== 'timeout') return first
    this.signal('SIGKILL')
    return this.reported()
  }

  /** Its exit, as the loader reports it; a loader that does not within LOADER_REPLY_MS is killed (which settles it). */
  private async reported(): Promise<ExitInfo> {
    const wait = new AbortController()
    const first = await Promise.race([this.exited, sleep(LOADER_REPLY_MS, wait.signal).then(() => 'timeout' as const)])
    wait.abort()
    if (first !== 'timeout') return first
    this.loader.unresponsive(`report the exit of scorer pid ${this.pid}`)
    return this.exited
  }

  killNow(): void {
    this.signal('SIGKILL')
  }

  /** Only while the loader has not reported its exit, so that a reused pid is never signalled. */
  private signal(signal: NodeJS.Signals): void {
    if (!this.running) return
    try {
      process.kill(this.pid, signal)
    } catch {}
  }
}
