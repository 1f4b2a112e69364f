// Owns one scorer child process: its process group, its prefixed output, and how it stops.
import {createInterface} from 'node:readline'
import type {Readable} from 'node:stream'

import type {EnvVars} from '../config.js'
import {sleep} from '../util/abort.js'
import {startGroup} from '../util/exec.js'
import {which} from '../util/which.js'
import type {ScorerCommand} from './command.js'

export interface ExitInfo {
  readonly exitCode: number | null
  readonly signal: string | null
}

export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`
}

export interface OutputSink {
  write(chunk: string): unknown
}

export interface StartOptions {
  readonly command: ScorerCommand
  /** The environment the child inherits, before command.env is added. */
  readonly baseEnv: EnvVars
  /** Prefix of every output line, e.g. "scorer". */
  readonly label: string
  readonly stdout: OutputSink
  readonly stderr: OutputSink
  readonly cwd?: string
}

const TAIL_LINES = 40

/**
 * On Linux, `setpriv --pdeathsig KILL` makes the kernel SIGKILL the scorer the moment mlserve itself dies
 * (even by SIGKILL). KILL, not TERM: uvicorn answers SIGTERM by waiting for the predictions in flight,
 * which nobody will read. The rest of its process group goes by the exit guard (util/exit-guard.ts), which
 * also applies on other platforms.
 */
export function parentDeathPrefix(envPath: string | undefined, platform = process.platform): string[] {
  if (platform !== 'linux') return []
  const setpriv = which('setpriv', envPath)
  return setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : []
}

/** What the supervisor needs of a scorer's process: spawned (ScorerProcess) or forked (scorer/preload.ts). */
export interface ScorerHandle {
  readonly pid: number
  /** Settles when the process has exited, however it exited. */
  readonly exited: Promise<ExitInfo>
  readonly running: boolean
  stderrTail(lines?: number): string
  /** SIGTERM, then SIGKILL if it has not exited within graceMs (at once when cutShort aborts). */
  stop(graceMs: number, cutShort?: AbortSignal): Promise<ExitInfo>
  /** Synchronous last resort (process 'exit' handlers): SIGKILL. */
  killNow(): void
}

export class ScorerProcess implements ScorerHandle {
  readonly pid: number
  /** Settles when the child has exited, however it exited. */
  readonly exited: Promise<ExitInfo>
  private exitInfo: ExitInfo | undefined
  private readonly tail: string[] = []

  private constructor(pid: number, exited: Promise<ExitInfo>) {
    this.pid = pid
    this.exited = exited.then((info) => {
      this.exitInfo = info
      return info
    })
  }

  /** Spawns the command in its own process group with piped, line-prefixed output. */
  static async start(options: StartOptions): Promise<ScorerProcess> {
    const {command, baseEnv} = options
    const env = {...baseEnv, ...command.env}
    const argv = [...parentDeathPrefix(env.PATH), command.file, ...command.args]
    const child = await startGroup(argv[0]!, argv.slice(1), {env, cwd: options.cwd})
    const exited = child.exited.then((result) => ({exitCode: result.exitCode ?? null, signal: result.signal ?? null}))
    if (child.pid === undefined) {
      // The spawn itself failed (the file is missing, for instance).
      const result = await child.exited
      throw Object.assign(new Error(result.message), {exitCode: result.exitCode})
    }

    const scorer = new ScorerProcess(child.pid, exited)
    scorer.pipe(child.stdout, options.stdout, `[${options.label}] `, false)
    scorer.pipe(child.stderr, options.stderr, `[${options.label}] `, true)
    return scorer
  }

  get running(): boolean {
    return this.exitInfo === undefined
  }

  /** The last lines the child wrote to stderr, for error messages. */
  stderrTail(lines = 20): string {
    return this.tail.slice(-lines).join('\n')
  }

  /** SIGTERM to the whole process group, then SIGKILL if it has not exited within graceMs. */
  async stop(graceMs: number, cutShort?: AbortSignal): Promise<ExitInfo> {
    if (!this.running) {
      this.signalGroup('SIGKILL')
      return this.exited
    }

    this.signalGroup('SIGTERM')
    const wait = new AbortController()
    const timedOut = sleep(graceMs, AbortSignal.any([wait.signal, ...(cutShort ? [cutShort] : [])])).then(() => 'timeout' as const)
    const first = await Promise.race([this.exited, timedOut])
    wait.abort()
    if (first === 'timeout') {
      this.signalGroup('SIGKILL')
      return this.exited
    }

    // The leader exited; anything it left in its group goes too.
    this.signalGroup('SIGKILL')
    return first
  }

  /** Synchronous last resort (process 'exit' handlers): SIGKILL the whole group. */
  killNow(): void {
    this.signalGroup('SIGKILL')
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal)
    } catch {}
  }

  private pipe(stream: Readable | null | undefined, sink: OutputSink, prefix: string, keepTail: boolean): void {
    if (!stream) return
    const lines = createInterface({input: stream, crlfDelay: Number.POSITIVE_INFINITY})
    lines.on('line', (line) => {
      sink.write(prefix + line + '\n')
      if (keepTail) {
        this.tail.push(line)
        if (this.tail.length > TAIL_LINES) this.tail.shift()
      }
    })
  }
}
