// Runs environment-building commands with their output kept in a log file; a failure names the file.
import {appendFile, mkdir, readFile} from 'node:fs/promises'
import path from 'node:path'

import type {EnvVars} from '../config.js'
import {MlserveError} from '../errors.js'
import {describeFailure, run as runChild, tailLines} from '../util/exec.js'

export interface InstallerRun {
  readonly logFile: string
  readonly env: EnvVars
  readonly signal?: AbortSignal
}

/**
 * The installer run for one build of a cache key: its log file is `<root>/logs/<key>-<time>.log` (kept
 * when the build fails, and named by the error), and pip never prompts.
 */
export async function installerRunFor(root: string, key: string, env: EnvVars, signal?: AbortSignal): Promise<InstallerRun> {
  const logFile = path.join(root, 'logs', `${key}-${Date.now()}.log`)
  await mkdir(path.dirname(logFile), {recursive: true})
  return {logFile, env: {...env, PIP_NO_INPUT: '1'}, signal}
}

/** The last `lines` lines of a file, for error messages. */
export async function tailOf(file: string, lines = 15): Promise<string> {
  return tailLines(await readFile(file, 'utf8').catch(() => ''), lines)
}

/**
 * Runs argv (no shell) with stdout and stderr appended to the log file. Rejects with ENV_BUILD_FAILED
 * naming what failed, the log file and its last lines; with the abort reason when cancelled. The installer
 * runs in its own process group (uv and pip start build backends of their own): a cancel, or mlserve's
 * exit by any path, SIGKILL included, ends the whole tree.
 */
export async function runInstaller(what: string, argv: readonly string[], run: InstallerRun, cwd?: string): Promise<void> {
  await appendFile(run.logFile, `\n$ ${argv.join(' ')}${cwd ? `   (in ${cwd})` : ''}\n`)
  const result = await runChild(argv[0]!, argv.slice(1), {
    cwd,
    env: run.env,
    stdout: {file: run.logFile, append: true},
    stderr: {file: run.logFile, append: true},
    signal: run.signal,
    group: true,
  })
  if (result.exitCode === 0) return
  const why = describeFailure(argv[0]!, result)
  throw new MlserveError(
    'ENV_BUILD_FAILED',
    `${what} failed (${why}). The full installer log is ${run.logFile}; its last lines:\n${await tailOf(run.logFile)}`,
    {suggestions: ["Fix the model's requirements (python_env.yaml, requirements.txt), or check that the package index is reachable."]},
  )
}
