// Builds a model's virtualenv: with uv when it is available (or asked for), else python -m venv and pip.
import {lstat, mkdtemp, readFile, readdir, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {randomBytes} from 'node:crypto'

import type {Logger} from '../log.js'
import {guardPath} from '../util/exit-guard.js'
import {runInstaller, type InstallerRun} from './installer.js'

export interface VirtualenvPlan {
  /** The uv executable, or undefined for python -m venv + pip. */
  readonly uv?: string
  /** The base interpreter the env is made from. */
  readonly python: string
  readonly buildDependencies: readonly string[]
  /** Requirement lines as the model wrote them (e.g. "-r requirements.txt"), relative to the model dir. */
  readonly dependencies: readonly string[]
  /** How many requirements those lines expand to (for progress). */
  readonly requirementCount: number
  /** e.g. "mlflow==3.17.2" with --install-mlflow. */
  readonly extraRequirements: readonly string[]
  readonly modelDir: string
}

export const envPython = (dir: string): string => path.join(dir, 'bin', 'python')

/** The argv that creates the env in dir. uv's envs are relocatable, so the rename into the cache keeps them working. */
export function createCommand(plan: VirtualenvPlan, dir: string): string[] {
  return plan.uv ? [plan.uv, 'venv', dir, '--python', plan.python, '--relocatable', '--no-config'] : [plan.python, '-m', 'venv', dir]
}

/** The argv prefix that installs into the env. pip skips byte-compiling (most of its time); Python compiles on first import. */
export function installCommand(plan: VirtualenvPlan, dir: string): string[] {
  return plan.uv
    ? [plan.uv, 'pip', 'install', '--python', envPython(dir)]
    : [envPython(dir), '-m', 'pip', 'install', '--no-compile', '--disable-pip-version-check', '--no-input']
}

/**
 * mlflow installs a model's requirement lines from a requirements file placed in a temporary directory
 * beside links to every file of the model, so that `-r requirements.txt` and relative paths resolve
 * against the model directory. The same here; returns the directory and the file name.
 */
async function stageRequirements(modelDir: string, lines: readonly string[]): Promise<{dir: string; file: string}> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mlserve-reqs-'))
  for (const name of await readdir(modelDir)) {
    // eslint-disable-next-line no-await-in-loop
    await symlink(path.join(modelDir, name), path.join(dir, name))
  }

  const file = `requirements.${randomBytes(16).toString('hex')}.txt`
  await writeFile(path.join(dir, file), lines.join('\n') + '\n')
  return {dir, file}
}

/** Installs requirement lines from a staged requirements file, in a directory that mirrors the model's. */
async function installFromFile(
  what: string,
  modelDir: string,
  lines: readonly string[],
  install: readonly string[],
  run: InstallerRun,
): Promise<void> {
  const staged = await stageRequirements(modelDir, lines)
  // Removed by the exit guard's watchdog if mlserve dies without running this cleanup (SIGKILL).
  const releaseStaged = guardPath(staged.dir)
  try {
    await runInstaller(what, [...install, '-r', staged.file], run, staged.dir)
  } finally {
    await rm(staged.dir, {recursive: true, force: true})
    releaseStaged()
  }
}

/** Builds the env into dir (a temporary directory that is renamed to finalDir afterwards). */
export async function buildVirtualenv(plan: VirtualenvPlan, dir: string, finalDir: string, run: InstallerRun, log: Logger): Promise<void> {
  const creating = log.phase(`creating the virtualenv (${plan.uv ? 'uv' : 'venv + pip'})`, {live: true})
  await runInstaller('Creating the virtualenv', createCommand(plan, dir), run)
  creating.done()

  const install = installCommand(plan, dir)
  // The model's lines (build dependencies, then dependencies) reach the installer only through a
  // requirements file, as in mlflow: never as argv, where `--target=DIR` would be read as an option.
  if (plan.buildDependencies.length > 0) {
    const phase = log.phase(`installing ${plan.buildDependencies.length} build dependencies`, {live: true})
    await installFromFile('Installing the build dependencies', plan.modelDir, plan.buildDependencies, install, run)
    phase.done()
  }

  if (plan.dependencies.length > 0) {
    const phase = log.phase(`installing ${plan.requirementCount} requirements (${plan.dependencies.join(', ')})`, {live: true})
    await installFromFile("Installing the model's requirements", plan.modelDir, plan.dependencies, install, run)
    phase.done()
  }

  if (plan.extraRequirements.length > 0) {
    const phase = log.phase(`installing ${plan.extraRequirements.join(', ')}`, {live: true})
    await runInstaller(`Installing ${plan.extraRequirements.join(', ')}`, [...install, ...plan.extraRequirements], run)
    phase.done()
  }

  if (!plan.uv) await relocateScripts(dir, finalDir)
}

/** python -m venv writes the env's absolute path into bin/ (activate, script shebangs): point them at finalDir. */
async function relocateScripts(dir: string, finalDir: string): Promise<void> {
  const bin = path.join(dir, 'bin')
  for (const name of await readdir(bin)) {
    const file = path.join(bin, name)
    // eslint-disable-next-line no-await-in-loop
    if ((await lstat(file)).isSymbolicLink()) continue
    // eslint-disable-next-line no-await-in-loop
    const text = await readFile(file, 'utf8').catch(() => undefined)
    if (text === undefined || text.includes('\0') || !text.includes(dir)) continue
    // eslint-disable-next-line no-await-in-loop
    await writeFile(file, text.replaceAll(dir, finalDir))
  }
}
