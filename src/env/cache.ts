// The environment cache: one directory per content key, built in a temporary directory under a
// per-key lock, verified, marked complete and renamed into place, so a half-built env is never reused.
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile} from 'node:fs/promises'
import {homedir, hostname} from 'node:os'
import path from 'node:path'

import {sleep} from '../util/abort.js'

/** Written last, just before the rename: an env directory without it is not an environment. */
export const MARKER = '.mlserve-env.json'
const IN_USE_DIR = '.mlserve-in-use'

export interface EnvMetadata {
  readonly key: string
  readonly manager: string
  readonly python: string
  readonly mlflow: string | null
  /** Requirement specs of the server installed besides the model's (e.g. mlserver), when any. */
  readonly serverPackages?: readonly string[]
  /** The model directory the env was first built for. */
  readonly model: string
  readonly created: string
  /** For envs that live outside the cache (conda), where they are. */
  readonly prefix?: string
}

export function envRoot(env: Readonly<Record<string, string | undefined>>): string {
  if (env.MLSERVE_ENV_ROOT) return path.resolve(env.MLSERVE_ENV_ROOT)
  const cache = env.XDG_CACHE_HOME ?? path.join(env.HOME ?? homedir(), '.cache')
  return path.join(cache, 'mlserve', 'envs')
}

/** A stable content key: sha256 of canonical JSON, shortened. */
export function contentKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 24)
}

export async function readMetadata(dir: string): Promise<EnvMetadata | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, MARKER), 'utf8')) as EnvMetadata
  } catch {
    return undefined
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface LockOptions {
  /** Called once if another live process holds the lock. */
  readonly onWait?: (ownerPid: number) => void
  readonly signal?: AbortSignal
}

/**
 * Takes `<root>/<key>.lock` (mkdir is atomic). A lock whose owner process is gone is taken over.
 * Resolves with a release function; rejects if `signal` aborts while waiting.
 */
export async function acquireLock(root: string, key: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  const lock = path.join(root, `${key}.lock`)
  const owner = path.join(lock, 'owner')
  let told = false
  await mkdir(root, {recursive: true})
  for (;;) {
    options.signal?.throwIfAborted()
    try {
      // eslint-disable-next-line no-await-in-loop
      await mkdir(lock)
      // eslint-disable-next-line no-await-in-loop
      await writeFile(owner, `${process.pid} ${hostname()}\n`)
      return () => rm(lock, {recursive: true, force: true})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }

    // eslint-disable-next-line no-await-in-loop
    const text = await readFile(owner, 'utf8').catch(() => '')
    const [pid, host] = text.trim().split(' ')
    if (pid && host === hostname() && !isAlive(Number(pid))) {
      // The owner died (SIGKILL, power loss): its lock and its half-built directory are garbage.
      // eslint-disable-next-line no-await-in-loop
      await rm(lock, {recursive: true, force: true})
      continue
    }

    if (pid && !told) {
      told = true
      options.onWait?.(Number(pid))
    }

    // eslint-disable-next-line no-await-in-loop
    await sleep(250, options.signal)
  }
}

export interface BuildRequest {
  readonly root: string
  readonly key: string
  /**
   * Builds the environment into `dir` (a fresh temporary directory), which becomes the cache entry.
   * May return metadata known only after the build (where a conda env lives).
   */
  readonly build: (dir: string, finalDir: string) => Promise<Partial<EnvMetadata> | void>
  readonly metadata: Omit<EnvMetadata, 'key' | 'created'>
  readonly onWait?: (ownerPid: number) => void
  readonly signal?: AbortSignal
}

export interface CachedEnv {
  readonly dir: string
  readonly metadata: EnvMetadata
  /** False when an existing complete environment was reused. */
  readonly built: boolean
}

/** Returns the complete env for the key, building it at most once across concurrent processes. */
export async function ensureCachedEnv(request: BuildRequest): Promise<CachedEnv> {
  const {root, key} = request
  const finalDir = path.join(root, key)
  const existing = await readMetadata(finalDir)
  if (existing) return {dir: finalDir, metadata: existing, built: false}

  const release = await acquireLock(root, key, {onWait: request.onWait, signal: request.signal})
  const tmp = path.join(root, `.tmp-${key}-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    const builtMeanwhile = await readMetadata(finalDir)
    if (builtMeanwhile) return {dir: finalDir, metadata: builtMeanwhile, built: false}

    // Whatever is here without a marker, or in a temporary directory for this key, is a dead build's.
    await removeLeftovers(root, key)
    await mkdir(tmp)
    const learned = await request.build(tmp, finalDir)
    const metadata: EnvMetadata = {...request.metadata, ...learned, key, created: new Date().toISOString()}
    await writeFile(path.join(tmp, MARKER), JSON.stringify(metadata, null, 2) + '\n')
    await rename(tmp, finalDir)
    return {dir: finalDir, metadata, built: true}
  } finally {
    await rm(tmp, {recursive: true, force: true})
    await release()
  }
}

async function removeLeftovers(root: string, key: string): Promise<void> {
  const names = await readdir(root).catch(() => [] as string[])
  await Promise.all(
    names
      .filter((name) => name === key || name.startsWith(`.tmp-${key}-`))
      .map((name) => rm(path.join(root, name), {recursive: true, force: true})),
  )
}

/**
 * Marks the env as in use by this process until the returned function is called: `env prune` never
 * removes it meanwhile. Also records the use time.
 */
export async function markInUse(dir: string): Promise<() => Promise<void>> {
  const now = new Date()
  await utimes(path.join(dir, MARKER), now, now).catch(() => {})
  const lease = path.join(dir, IN_USE_DIR, String(process.pid))
  await mkdir(path.dirname(lease), {recursive: true})
  await writeFile(lease, '')
  return () => rm(lease, {force: true})
}

export async function inUseBy(dir: string): Promise<number[]> {
  const names = await readdir(path.join(dir, IN_USE_DIR)).catch(() => [] as string[])
  return names.map(Number).filter((pid) => Number.isInteger(pid) && isAlive(pid))
}

export async function lastUsed(dir: string): Promise<Date | undefined> {
  const info = await stat(path.join(dir, MARKER)).catch(() => undefined)
  return info?.atime && info.mtime ? (info.atime > info.mtime ? info.atime : info.mtime) : undefined
}
