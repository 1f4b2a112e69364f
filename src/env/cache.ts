// The environment cache: the environment kind of the build-once cache (src/cache/build-once.ts), its root,
// the cheap check that a cached env still works, and the in-use marks `env prune` respects.
import {mkdir, readdir, rm, stat, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import path from 'node:path'

import type {EnvVars} from '../config.js'
import {MARKER, parseBaseRecord, type CacheKind} from '../cache/build-once.js'
import {isAlive} from '../cache/lock-owner.js'
import {pathExists} from '../util/fs.js'

export {MARKER, contentKey} from '../cache/build-once.js'

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

export function envRoot(env: EnvVars): string {
  if (env.MLSERVE_ENV_ROOT) return path.resolve(env.MLSERVE_ENV_ROOT)
  const cache = env.XDG_CACHE_HOME ?? path.join(env.HOME ?? homedir(), '.cache')
  return path.join(cache, 'mlserve', 'envs')
}

/** Where the env's files are: its conda prefix, else its cache directory. */
export const envHome = (dir: string, metadata: Pick<EnvMetadata, 'prefix'>): string => metadata.prefix ?? dir

/** A conda prefix mlserve may delete: absolute and named after the entry's key (never what a forged marker names). */
export const ownedPrefix = (metadata: Pick<EnvMetadata, 'key' | 'prefix'>): string | undefined =>
  metadata.prefix && path.isAbsolute(metadata.prefix) && path.basename(metadata.prefix) === `mlserve-${metadata.key}`
    ? metadata.prefix
    : undefined

/**
 * Why an environment cannot run the scorer, checked cheaply (no Python started): its interpreter is gone
 * (or a dangling link: the base Python was removed), or mlflow is no longer installed. Undefined if sound.
 */
export async function envDamage(home: string): Promise<string | undefined> {
  const python = path.join(home, 'bin', 'python')
  if (!(await pathExists(python))) return `its interpreter ${python} is gone`
  const lib = path.join(home, 'lib')
  const versions = (await readdir(lib).catch(() => [] as string[])).filter((name) => /^python3\.\d+$/.test(name))
  for (const version of versions) {
    // eslint-disable-next-line no-await-in-loop
    if (await pathExists(path.join(lib, version, 'site-packages', 'mlflow', '__init__.py'))) return undefined
  }

  return `mlflow is no longer installed in it (${path.join(lib, 'python3.*', 'site-packages', 'mlflow')} is missing)`
}

/** The environment kind: a marker with manager and Python, checked before use, a conda prefix removed with it. */
export const ENV_KIND: CacheKind<EnvMetadata> = {
  name: 'environment',
  parse(value) {
    const record = parseBaseRecord(value)
    return record && typeof record.manager === 'string' && typeof record.python === 'string' && typeof record.model === 'string'
      ? (record as unknown as EnvMetadata)
      : undefined
  },
  verify: (dir, metadata) => envDamage(envHome(dir, metadata)),
  async dispose(_dir, metadata) {
    const prefix = ownedPrefix(metadata)
    if (prefix) await rm(prefix, {recursive: true, force: true})
  },
}

/**
 * Marks the env as in use by this process until the returned function is called: `env prune` never
 * removes it meanwhile. Also records the use time.
 */
export async function markInUse(dir: string): Promise<() => Promise<void>> {
  // An explicit stamp: reading the marker (env list, a cache lookup) moves its atime, so atime says nothing.
  await writeFile(path.join(dir, LAST_USED), `${new Date().toISOString()}\n`).catch(() => {})
  const lease = path.join(dir, IN_USE_DIR, String(process.pid))
  // One mark per process: two generations of a reload may use the same environment; the last release removes it.
  leases.set(lease, (leases.get(lease) ?? 0) + 1)
  await mkdir(path.dirname(lease), {recursive: true})
  await writeFile(lease, '')
  let released = false
  return async () => {
    if (released) return
    released = true
    const left = (leases.get(lease) ?? 1) - 1
    if (left > 0) {
      leases.set(lease, left)
      return
    }

    leases.delete(lease)
    await rm(lease, {force: true})
  }
}

/** This process's in-use marks, by lease file: how many users each has. */
const leases = new Map<string, number>()

export async function inUseBy(dir: string): Promise<number[]> {
  const names = await readdir(path.join(dir, IN_USE_DIR)).catch(() => [] as string[])
  return names.map(Number).filter((pid) => Number.isInteger(pid) && isAlive(pid))
}

/** The stamp markInUse writes; its mtime is when the environment was last used. */
export const LAST_USED = '.last-used'

/** When the environment was last used: its stamp, else when it was built (the marker's mtime, never its atime). */
export async function lastUsed(dir: string): Promise<Date | undefined> {
  const stamp = await stat(path.join(dir, LAST_USED)).catch(() => undefined)
  const info = stamp ?? (await stat(path.join(dir, MARKER)).catch(() => undefined))
  return info?.mtime
}
