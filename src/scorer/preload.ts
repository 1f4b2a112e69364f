// The preload mode of the pyfunc backend: one process per generation loads the model, scorers are forked from it.
import {stat} from 'node:fs/promises'
import {createServer, type Server, type Socket} from 'node:net'
import path from 'node:path'
import {createInterface} from 'node:readline'

import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import {TEMPLATES_DIR} from '../paths.js'
import {sleep} from '../util/abort.js'
import {createDeferred, type Deferred} from '../util/deferred.js'
import type {Backend, ScorerMode, SlotInfo, StartIo, StartedScorer} from './backend.js'
import {scorerEnv} from './pyfunc.js'
import {ScorerProcess, type ExitInfo, type ScorerHandle} from './process.js'

export const PRELOAD_SCRIPT = path.join(TEMPLATES_DIR, 'python', 'preload.py')

/**
 * How long the loaded process may take to answer a fork request or report a killed fork's exit (it does
 * both in milliseconds). Past it, it is frozen (SIGSTOP, a deadlock): it is killed, so its slots come back
 * with a new one instead of waiting for it forever.
 */
const LOADER_REPLY_MS = 10_000

export interface PreloadInput {
  /** The spawn-mode backend: used as it is after a fall-back, and for what both modes share. */
  readonly spawn: Backend
  readonly python: string
  readonly modelDir: string
  readonly timeoutSeconds: number
  /** The forks serve mlserve_fastpath:app (see scorer/command.ts). */
  readonly fastPath?: boolean
  /** The model must be loaded within this long of the loader's start (--load-timeout; 0: no bound). */
  readonly loadTimeoutMs: number
  readonly log: Logger
}

type LoaderMessage =
  | {readonly event: 'loaded'}
  | {readonly event: 'unsafe'; readonly reason: string}
  | {readonly event: 'forked'; readonly id: number; readonly pid: number}
  | {readonly event: 'exited'; readonly pid: number; readonly code: number | null; readonly signal: string | null}

/** A scorer forked by the loaded process: not mlserve's child, so the loader reports its exit. */
class ForkedScorer implements ScorerHandle {
  private exit: ExitInfo | undefined
  private readonly ended = createDeferred<ExitInfo>()
  readonly exited = this.ended.promise

  constructor(
    readonly pid: number,
    private readonly loader: Loader,
  ) {}

  get running(): boolean {
    return this.exit === undefined
  }

  /** Called with the loader's report (or when the loader itself is gone: the kernel killed its forks). */
  settle(exit: ExitInfo): void {
    if (this.exit) return
    this.exit = exit
    this.ended.resolve(exit)
  }

  stderrTail(lines = 20): string {
    return this.loader.process.stderrTail(lines)
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

/** One loaded process (a generation) and its control channel. */
class Loader {
  readonly forks = new Map<number, ForkedScorer>()
  private readonly pending = new Map<number, Deferred<ForkedScorer>>()
  private nextId = 0
  private channel: Socket | undefined
  gone = false
  /** Found frozen and killed: its exit is on its way. */
  private frozen = false

  private constructor(
    readonly process: ScorerProcess,
    private readonly server: Server,
    private readonly log: Logger,
  ) {}

  /** Starts the loader and waits for its verdict: loaded (forks may be asked for), or why it cannot fork. */
  static async start(input: PreloadInput, io: StartIo, socketDir: string, generation: number): Promise<{loader: Loader} | {unsafe: string}> {
    const controlPath = path.join(socketDir, `preload-${generation}.ctl`)
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(controlPath, resolve)
    })
    const connected = new Promise<Socket>((resolve) => server.once('connection', resolve))
    let child: ScorerProcess
    try {
      child = await ScorerProcess.start({
        command: {
          file: input.python,
          args: [PRELOAD_SCRIPT, controlPath],
          env: scorerEnv(input.modelDir, input.timeoutSeconds, input.fastPath === true),
          server: 'uvicorn',
        },
        ...io,
      })
    } catch (error) {
      server.close()
      throw error
    }

    const loader = new Loader(child, server, input.log)
    const verdict = createDeferred<{loader: Loader} | {unsafe: string}>()
    if (input.loadTimeoutMs > 0) {
      const timer = setTimeout(() => {
        if (verdict.settled) return
        const seconds = Math.round(input.loadTimeoutMs / 1000)
        verdict.reject(
          new MlserveError(
            'LOAD_TIMEOUT',
            `The model did not load: the process loading it (--preload) took longer than ${seconds} s (--load-timeout).`,
            {
              suggestions: [
                "Read the scorer's output above, prefixed [scorer]: a load that hangs (a download, a lock) shows there.",
                'A model that takes longer to load needs a larger --load-timeout (MLSERVE_LOAD_TIMEOUT; 0: no bound).',
              ],
            },
          ),
        )
        child.killNow()
      }, input.loadTimeoutMs)
      timer.unref()
      void verdict.promise.then(
        () => clearTimeout(timer),
        () => clearTimeout(timer),
      )
    }

    void connected.then((socket) => {
      loader.channel = socket
      socket.on('error', () => {})
      const lines = createInterface({input: socket, crlfDelay: Number.POSITIVE_INFINITY})
      lines.on('line', (line) => {
        let message: LoaderMessage
        try {
          message = JSON.parse(line) as LoaderMessage
        } catch {
          return
        }

        if (message.event === 'loaded') verdict.resolve({loader})
        else if (message.event === 'unsafe') verdict.resolve({unsafe: message.reason})
        else loader.onMessage(message)
      })
    })
    void child.exited.then((exit) => {
      loader.onGone(exit)
      const tail = child.stderrTail(1).trim()
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`
      verdict.reject(
        new MlserveError(
          'SCORER_START_FAILED',
          `The process loading the model (--preload) ${how} before it was loaded${tail ? `: ${tail}` : '.'}`,
          {
            suggestions: ['Its full output is above, prefixed [scorer]: a failed model load (a missing package, a corrupt file) shows there.'],
          },
        ),
      )
    })
    return verdict.promise
  }

  /** Asks the loader for a scorer serving on `socketPath`; resolves with it once forked. */
  async fork(socketPath: string): Promise<ForkedScorer> {
    if (this.gone || !this.channel) throw new Error('the process that loaded the model is gone')
    const id = ++this.nextId
    const forked = createDeferred<ForkedScorer>()
    this.pending.set(id, forked)
    this.channel.write(JSON.stringify({op: 'fork', id, socket: socketPath}) + '\n')
    const timer = setTimeout(() => {
      if (this.pending.has(id)) this.unresponsive('fork a scorer')
    }, LOADER_REPLY_MS)
    timer.unref()
    void forked.promise.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    )
    return forked.promise
  }

  /** It did not do `what` within LOADER_REPLY_MS: frozen. Killed (its forks go too); the next start forks from a new one. */
  unresponsive(what: string): void {
    if (this.gone || this.frozen) return
    this.frozen = true
    this.log.warn(
      `--preload: the process that loaded the model (pid ${this.process.pid}) did not ${what} within ${LOADER_REPLY_MS / 1000} s: killing it; its scorers restart from a new one`,
    )
    this.process.killNow()
  }

  private onMessage(message: LoaderMessage): void {
    if (message.event === 'forked') {
      const scorer = new ForkedScorer(message.pid, this)
      this.forks.set(message.pid, scorer)
      this.pending.get(message.id)?.resolve(scorer)
      this.pending.delete(message.id)
    } else if (message.event === 'exited') {
      this.forks.get(message.pid)?.settle({exitCode: message.code, signal: message.signal})
      this.forks.delete(message.pid)
    }
  }

  /** The loaded process died: the kernel SIGKILLs its forks (PR_SET_PDEATHSIG); the next fork needs a new one. */
  private onGone(exit: ExitInfo): void {
    this.gone = true
    this.server.close()
    this.channel?.destroy()
    // Its process group is SIGKILLed: any fork not yet gone by its parent-death signal goes now.
    this.process.killNow()
    for (const scorer of this.forks.values()) scorer.settle({exitCode: null, signal: 'SIGKILL'})
    this.forks.clear()
    for (const pending of this.pending.values()) pending.reject(new Error(`the process that loaded the model ${describe(exit)}`))
    this.pending.clear()
  }

  async stop(graceMs: number, force?: AbortSignal): Promise<void> {
    this.channel?.end()
    await this.process.stop(graceMs, force)
  }
}

/** Resolves when `socketPath` exists, the scorer has exited, or after 2 s (the supervisor's /ping takes over). */
async function socketAppears(socketPath: string, scorer: ScorerHandle): Promise<void> {
  const deadline = performance.now() + 2000
  const exists = async () =>
    stat(socketPath).then(
      () => true,
      () => false,
    )
  // Polling in sequence is the point: each look waits for the one before.
  /* eslint-disable no-await-in-loop */
  while (scorer.running && performance.now() < deadline) {
    if (await exists()) return
    await sleep(5)
  }
  /* eslint-enable no-await-in-loop */
}

const describe = (exit: ExitInfo): string => (exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`)

/**
 * The pyfunc backend in the preload mode: scorers are forked from a process that loaded the model once;
 * when that process cannot fork safely, it falls back to `spawn` (with a warning naming why) for good.
 */
export function preloadBackend(input: PreloadInput): Backend {
  let loader: Promise<Loader | undefined> | undefined
  let current: Loader | undefined
  let generation = 0
  let fallback: string | undefined

  const loaderFor = async (io: StartIo, socketDir: string): Promise<Loader | undefined> => {
    if (current?.gone) {
      current = undefined
      loader = undefined
    }

    loader ??= (async () => {
      const started = await Loader.start(input, {...io, label: 'scorer'}, socketDir, ++generation)
      if ('unsafe' in started) {
        fallback = started.unsafe
        input.log.warn(`--preload: ${started.unsafe}; falling back to the spawn mode (each scorer loads its own copy of the model).`)
        return undefined
      }

      current = started.loader
      input.log.info(`--preload: the model is loaded once in pid ${current.process.pid} (generation ${generation}); scorers are forked from it`)
      return current
    })()
    // A loader that failed to start is forgotten, so that the next restart tries a new one.
    void loader.catch(() => {
      loader = undefined
    })
    return loader
  }

  return {
    ...input.spawn,
    mode: (): ScorerMode => (fallback === undefined ? 'preload' : 'spawn'),
    async start(slot: SlotInfo, io: StartIo): Promise<StartedScorer> {
      const loaded = fallback === undefined ? await loaderFor(io, path.dirname(slot.socketPath)) : undefined
      const endpoint = {kind: 'unix', socketPath: slot.socketPath} as const
      if (!loaded) {
        const {command} = await input.spawn.launch(slot)
        return {process: await ScorerProcess.start({command, ...io}), endpoint}
      }

      const forked = await loaded.fork(slot.socketPath)
      // A fork listens within milliseconds: waiting for its socket here spares the first /ping's retry delay.
      await socketAppears(slot.socketPath, forked)
      return {process: forked, endpoint}
    },
    async stop(graceMs, force) {
      await current?.stop(graceMs, force)
    },
    killNow() {
      current?.process.killNow()
    },
  }
}
