// The one way mlserve runs a subprocess: execa bound to the options mlserve always wants, imported lazily.
import type {Readable} from 'node:stream'

import type {Options, ResultPromise} from 'execa'

import type {EnvVars} from '../config.js'
import {guardProcessGroup} from './exit-guard.js'

export interface RunOptions {
  /** Exactly the environment the child gets: mlserve's own is never added behind the caller's back. */
  readonly env: EnvVars
  readonly cwd?: string
  /** Aborting it ends the child (with `group`, its whole process group, by SIGKILL). */
  readonly signal?: AbortSignal
  readonly timeoutMs?: number
  /** Default `ignore`: a child never reads mlserve's stdin unless asked to. */
  readonly stdin?: 'ignore' | 'inherit'
  /** Default `pipe` (kept in the result); `inherit`, or appended to a file. */
  readonly stdout?: 'pipe' | 'inherit' | {readonly file: string; readonly append: true}
  readonly stderr?: 'pipe' | 'inherit' | {readonly file: string; readonly append: true}
  /**
   * Run in its own process group, and kill the whole group: on abort, after the child exits (what it
   * left behind), and when mlserve exits by any path, SIGKILL included. For tools that spawn their own
   * children (uv, pip and their build backends, conda). Not with `stdin: 'inherit'` from a terminal.
   */
  readonly group?: boolean
}

export interface RunResult {
  /** undefined when the child did not exit by itself (not started, killed by a signal). */
  readonly exitCode: number | undefined
  readonly signal: string | undefined
  readonly stdout: string
  readonly stderr: string
  /** The errno code when the child could not be started (ENOENT, EACCES). */
  readonly spawnError: string | undefined
  readonly timedOut: boolean
  /** execa's one-line summary of what failed, for messages when stderr is empty. */
  readonly message: string
}

type Run = (file: string, args: readonly string[], options: Options) => ResultPromise

let bound: Promise<Run> | undefined
/** execa with mlserve's fixed options: no environment merged in, never throws for a failed child. */
const boundExeca = (): Promise<Run> =>
  (bound ??= import('execa').then(({execa}) => execa({extendEnv: false, reject: false, stripFinalNewline: true}) as unknown as Run))

export interface StartedGroup {
  /** undefined when the child could not be started; `exited` then says why. */
  readonly pid: number | undefined
  readonly stdout: Readable | null
  readonly stderr: Readable | null
  /** Settles (never rejects) when the child has exited; its output is streamed, not kept. */
  readonly exited: Promise<RunResult>
}

/**
 * Starts a long-running child (a scorer) in its own process group with its output piped, guarded so that
 * the group is SIGKILLed if mlserve exits without stopping it. Stopping it is the caller's (signal -pid).
 */
export async function startGroup(file: string, args: readonly string[], options: Pick<RunOptions, 'env' | 'cwd'>): Promise<StartedGroup> {
  const execa = await boundExeca()
  const child = execa(file, args, {env: {...options.env}, cwd: options.cwd, stdin: 'ignore', detached: true, cleanup: false, buffer: false})
  const release = child.pid === undefined ? undefined : guardProcessGroup(child.pid)
  const exited = child.then(resultOf, () => resultOf({failed: true, timedOut: false}))
  void exited.then(() => release?.())
  return {pid: child.pid, stdout: child.stdout, stderr: child.stderr, exited}
}

/** Runs file with args (never through a shell) and resolves with how it ended; rejects only on abort. */
export async function run(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const execa = await boundExeca()
  options.signal?.throwIfAborted()
  const group = options.group === true
  const child = execa(file, args, {
    env: {...options.env},
    cwd: options.cwd,
    stdin: options.stdin ?? 'ignore',
    stdout: options.stdout ?? 'pipe',
    stderr: options.stderr ?? 'pipe',
    timeout: options.timeoutMs,
    detached: group,
    // Groups are killed below; execa's own cleanup only reaches the direct child.
    cleanup: !group,
    ...(group ? {} : {cancelSignal: options.signal}),
  })
  const pid = child.pid
  const release = group && pid !== undefined ? guardProcessGroup(pid) : undefined
  const killGroup = () => {
    if (pid === undefined) return
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  }

  if (group) options.signal?.addEventListener('abort', killGroup, {once: true})
  try {
    const result = await child
    options.signal?.throwIfAborted()
    return resultOf(result)
  } finally {
    if (group) {
      options.signal?.removeEventListener('abort', killGroup)
      // The child has exited: whatever it left running in its group goes too.
      killGroup()
      release?.()
    }
  }
}

interface ExecaOutcome {
  readonly exitCode?: number
  readonly signal?: string
  readonly stdout?: unknown
  readonly stderr?: unknown
  readonly failed: boolean
  readonly timedOut: boolean
  readonly shortMessage?: string
  readonly code?: unknown
  readonly cause?: unknown
}

const resultOf = (result: ExecaOutcome): RunResult => ({
  exitCode: result.exitCode,
  signal: result.signal,
  stdout: typeof result.stdout === 'string' ? result.stdout : '',
  stderr: typeof result.stderr === 'string' ? result.stderr : '',
  spawnError: result.failed && result.exitCode === undefined && !result.signal && !result.timedOut ? spawnErrorOf(result) : undefined,
  timedOut: result.timedOut,
  message: result.shortMessage ?? '',
})

const spawnErrorOf = (result: {readonly code?: unknown; readonly cause?: unknown}): string | undefined => {
  if (typeof result.code === 'string') return result.code
  const cause = result.cause as NodeJS.ErrnoException | undefined
  return typeof cause?.code === 'string' ? cause.code : undefined
}

/** The last `lines` non-empty lines of a child's output, for error messages. */
export function tailLines(text: string, lines = 5): string {
  return text.trim().split('\n').slice(-lines).join('\n')
}

/** Why a child failed, in one phrase: the command was not found, a signal, a timeout, or its exit code. */
export function describeFailure(file: string, result: RunResult): string {
  if (result.spawnError === 'ENOENT') return `${file} was not found`
  if (result.spawnError) return `${file} could not be started (${result.spawnError})`
  if (result.timedOut) return 'it timed out'
  if (result.signal) return `killed by ${result.signal}`
  return `exit code ${result.exitCode}`
}
