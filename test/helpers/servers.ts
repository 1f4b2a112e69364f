// Starts and stops the servers end-to-end tests talk to: `mlserve serve` (the built CLI) and the
// reference `mlflow models serve` from the test toolchain. Every child is tied to the test process
// (setpriv --pdeathsig KILL), so a crashed test leaves nothing running.
import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {freePort} from '../../src/util/net.js'

import {REPO_ROOT, toolchainBin, toolchainEnv, toolchainPython, type ToolchainName} from './toolchain.js'

export const MLSERVE_BIN = path.join(REPO_ROOT, 'bin', 'run.js')
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => existsSync(file))

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Proc {
  readonly child: ChildProcess
  readonly exited: Promise<Exit>
  stdout(): string
  stderr(): string
  /** Resolves when `pattern` appears in stderr (or stdout); rejects if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  /** Sends `signal` (if still running) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>
}

let defaultCwd: string | undefined
/**
 * The working directory of children whose test names none: a scratch directory, never the repository,
 * where mlflow (whose default tracking store is ./mlruns before 3.7) would leave an mlruns/ behind.
 */
function scratchCwd(): string {
  if (!defaultCwd) {
    const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-test-cwd-'))
    defaultCwd = dir
    process.once('exit', () => rmSync(dir, {recursive: true, force: true}))
  }

  return defaultCwd
}

export function spawnProc(
  file: string,
  args: readonly string[],
  options: {env?: Record<string, string>; cwd?: string; stdin?: string} = {},
): Proc {
  const argv = SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', '--', file, ...args] : [file, ...args]
  const child = spawn(argv[0]!, argv.slice(1), {
    env: options.env ?? toolchainEnv(),
    cwd: options.cwd ?? scratchCwd(),
    stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  })
  if (options.stdin !== undefined) child.stdin!.end(options.stdin)
  let out = ''
  let err = ''
  const listeners = new Set<() => void>()
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString()
    for (const wake of listeners) wake()
  })
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString()
    for (const wake of listeners) wake()
  })
  let done: Exit | undefined
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      done = {code, signal}
      resolve(done)
      for (const wake of listeners) wake()
    })
  })

  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    waitForOutput(pattern, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(check)
          reject(new Error(`timed out waiting for ${pattern}; stderr:\n${err}`))
        }, timeoutMs)
        const check = () => {
          const match = pattern.exec(err) ?? pattern.exec(out)
          if (match) {
            clearTimeout(timer)
            listeners.delete(check)
            resolve(match)
          } else if (done) {
            clearTimeout(timer)
            listeners.delete(check)
            reject(new Error(`process exited (${JSON.stringify(done)}) before ${pattern}; stderr:\n${err}`))
          }
        }

        listeners.add(check)
        check()
      })
    },
    async stop(signal = 'SIGINT') {
      if (!done) child.kill(signal)
      return exited
    },
  }
}

export {freePort} from '../../src/util/net.js'

export interface Server extends Proc {
  readonly url: string
}

/** Polls GET /ping until 200; rejects if the process exits first. */
export async function waitForPing(url: string, proc: Proc, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let exited = false
  void proc.exited.then(() => {
    exited = true
  })
  while (Date.now() < deadline) {
    if (exited) throw new Error(`server exited before it was ready; stderr:\n${proc.stderr()}`)
    try {
      // eslint-disable-next-line no-await-in-loop
      const res = await fetch(`${url}/ping`)
      // eslint-disable-next-line no-await-in-loop
      await res.arrayBuffer()
      if (res.status === 200) return
    } catch {}

    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 200))
  }

  throw new Error(`server not ready after ${timeoutMs} ms; stderr:\n${proc.stderr()}`)
}

/** `mlserve serve` on a free port (the local manager with the toolchain's Python by default); resolves once ready. */
export async function startMlserve(
  args: readonly string[],
  options: {env?: Record<string, string>; cwd?: string; waitReady?: boolean; toolchain?: ToolchainName} = {},
): Promise<Server> {
  // The local manager with the toolchain's Python, unless the test picks a manager itself.
  const manager = args.includes('--env-manager') ? [] : ['--env-manager', 'local', '--python', toolchainPython(options.toolchain)]
  const proc = spawnProc(process.execPath, [MLSERVE_BIN, 'serve', ...manager, '-p', '0', ...args], {
    env: options.env ?? toolchainEnv({}, options.toolchain),
    cwd: options.cwd,
  })
  const [, url] = await proc.waitForOutput(/listening on (http:\/\/\S+)/)
  const server = {...proc, url: url!}
  if (options.waitReady !== false) await waitForPing(server.url, proc)
  return server
}

/** The reference: `mlflow models serve --env-manager local` from the test toolchain. */
export async function startMlflowServe(modelDir: string, args: readonly string[] = [], toolchain: ToolchainName = 'main'): Promise<Server> {
  const port = await freePort()
  const proc = spawnProc(
    path.join(toolchainBin(toolchain), 'mlflow'),
    ['models', 'serve', '-m', modelDir, '--env-manager', 'local', '-h', '127.0.0.1', '-p', String(port), ...args],
    {env: toolchainEnv({}, toolchain)},
  )
  const server = {...proc, url: `http://127.0.0.1:${port}`}
  await waitForPing(server.url, proc)
  return server
}

export interface CliResult extends Exit {
  readonly stdout: string
  readonly stderr: string
}

/** Runs one mlserve command to completion. */
export async function runMlserve(
  args: readonly string[],
  options: {env?: Record<string, string>; cwd?: string; stdin?: string} = {},
): Promise<CliResult> {
  const proc = spawnProc(process.execPath, [MLSERVE_BIN, ...args], {
    env: options.env ?? toolchainEnv(),
    cwd: options.cwd,
    stdin: options.stdin,
  })
  const exit = await proc.exited
  return {...exit, stdout: proc.stdout(), stderr: proc.stderr()}
}

/** Whether a process with this pid is still alive. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Alive and not a zombie (a killed process whose parent died waits for init to reap it). */
export function isRunning(pid: number): boolean {
  if (!isAlive(pid)) return false
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
  } catch {
    return false
  }
}

/** The parent pid of a process, from /proc. */
export const parentOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1])

/** SIGKILL for a process a test may have left behind (teardown). */
export function killIfAlive(pid: number): void {
  if (isAlive(pid)) process.kill(pid, 'SIGKILL')
}

/** Polls (bounded, generously) until `check` holds: an event, not a speed assertion. */
export async function eventually(check: () => boolean, withinMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + withinMs
  while (Date.now() < deadline) {
    if (check()) return true
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  return check()
}

/** The value of an unlabelled series on a server's /metrics (0 when the series is absent). */
export async function metricValue(server: {readonly url: string}, series: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

/** Polls `check` every 50 ms until it holds; throws, naming `what`, after 30 s: a wait for an event, not a speed assertion. */
export async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    // eslint-disable-next-line no-await-in-loop
    if (await check()) return
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  throw new Error(`timed out waiting until ${what}`)
}

/** Waits (bounded) until the pid is gone: an event, not a speed assertion. */
export const gone = (pid: number, withinMs = 30_000): Promise<boolean> => eventually(() => !isAlive(pid), withinMs)

/** Polls /readyz until it counts `count` ready scorers (with -w N any of them may finish loading first). */
export async function readyScorers(server: Server, count: number, timeoutMs = 120_000): Promise<void> {
  const ready = async () => {
    const body = (await (await fetch(`${server.url}/readyz`)).json()) as {scorers?: {ready?: number}}
    return (body.scorers?.ready ?? 0) >= count
  }

  const deadline = Date.now() + timeoutMs
  // eslint-disable-next-line no-await-in-loop
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} scorers ready after ${timeoutMs} ms; stderr:\n${server.stderr()}`)
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
