// Runs environment-building commands with their output kept in a log file; a failure names the file.
import {appendFile, mkdir, readFile} from 'node:fs/promises'
import path from 'node:path'

import {MlserveError} from '../errors.js'

export interface InstallerRun {
  readonly logFile: string
  readonly env: Readonly<Record<string, string | undefined>>
  readonly signal?: AbortSignal
}

/**
 * The installer run for one build of a cache key: its log file is `<root>/logs/<key>-<time>.log` (kept
 * when the build fails, and named by the error), and pip never prompts.
 */
export async function installerRunFor(
  root: string,
  key: string,
  env: Readonly<Record<string, string | undefined>>,
  signal?: AbortSignal,
): Promise<InstallerRun> {
  const logFile = path.join(root, 'logs', `${key}-${Date.now()}.log`)
  await mkdir(path.dirname(logFile), {recursive: true})
  return {logFile, env: {...env, PIP_NO_INPUT: '1'}, signal}
}

/** The last `lines` lines of a file, for error messages. */
export async function tailOf(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

/**
 * Runs argv (no shell) with stdout and stderr appended to the log file. Rejects with ENV_BUILD_FAILED
 * naming what failed, the log file and its last lines; with the abort reason when cancelled.
 */
export async function runInstaller(
  what: string,
  argv: readonly string[],
  run: InstallerRun,
  cwd?: string,
): Promise<void> {
  const {execa} = await import('execa')
  await appendFile(run.logFile, `\n$ ${argv.join(' ')}${cwd ? `   (in ${cwd})` : ''}\n`)
  const child = execa(argv[0]!, argv.slice(1), {
    cwd,
    env: {...run.env},
    extendEnv: false,
    stdin: 'ignore',
    stdout: {file: run.logFile, append: true},
    stderr: {file: run.logFile, append: true},
    cancelSignal: run.signal,
    reject: false,
    // Its own process group: a signal or the build timeout stops the installer with everything it started (uv, pip, build backends).
    detached: true,
  })
  const killGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL')
    } catch {
      // The group is gone already.
    }
  }

  run.signal?.addEventListener('abort', killGroup, {once: true})
  const result = await child.finally(() => run.signal?.removeEventListener('abort', killGroup))
  if (run.signal?.aborted) throw run.signal.reason ?? new Error('cancelled')
  if (result.exitCode === 0) return
  const why = result.failed && result.code === 'ENOENT' ? `${argv[0]} was not found` : `exit code ${result.exitCode ?? result.signal}`
  throw new MlserveError(
    'ENV_BUILD_FAILED',
    `${what} failed (${why}). The full installer log is ${run.logFile}; its last lines:\n${await tailOf(run.logFile)}`,
    {suggestions: ["Fix the model's requirements (python_env.yaml, requirements.txt), or check that the package index is reachable."]},
  )
}
