// Lists the cached environments and prunes them by age and total size, never one in use.
import {lstat, readdir} from 'node:fs/promises'
import path from 'node:path'

import {readRecord, removeEntry} from '../cache/build-once.js'
import {MlserveError} from '../errors.js'
import {ENV_KIND, envHome, inUseBy, lastUsed, type EnvMetadata} from './cache.js'

export interface EnvEntry extends EnvMetadata {
  readonly dir: string
  readonly sizeBytes: number
  readonly lastUsed: string | null
  readonly inUseBy: readonly number[]
}

export async function directorySize(dir: string): Promise<number> {
  let total = 0
  const entries = await readdir(dir, {withFileTypes: true}).catch(() => [])
  for (const entry of entries) {
    const file = path.join(dir, entry.name)
    // One file at a time: an environment has tens of thousands, and a Promise.all would open them all at once.
    // eslint-disable-next-line no-await-in-loop
    if (entry.isDirectory()) total += await directorySize(file)
    // eslint-disable-next-line no-await-in-loop
    else total += (await lstat(file).catch(() => undefined))?.size ?? 0
  }

  return total
}

/** The mlflow (else mlflow-skinny) version installed in an environment, from its dist-info directory name. */
export async function installedMlflow(home: string): Promise<string | undefined> {
  const lib = path.join(home, 'lib')
  for (const python of (await readdir(lib).catch(() => [] as string[])).filter((name) => name.startsWith('python'))) {
    // eslint-disable-next-line no-await-in-loop
    const names = await readdir(path.join(lib, python, 'site-packages')).catch(() => [] as string[])
    for (const distribution of ['mlflow', 'mlflow_skinny']) {
      const found = names.map((name) => new RegExp(`^${distribution}-([^-]+)\\.dist-info$`, 'i').exec(name)?.[1]).find(Boolean)
      if (found) return found
    }
  }

  return undefined
}

/** Every complete environment under root, most recently used first. */
export async function listEnvs(root: string): Promise<EnvEntry[]> {
  const names = await readdir(root).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[]
    throw new MlserveError(
      'INVALID_ARGUMENT',
      `The environment cache ${root} is not a directory mlserve can read (${error.code ?? error.message}).`,
      {
        cause: error,
        suggestions: ['Point --root (or MLSERVE_ENV_ROOT) at the environment cache directory.'],
      },
    )
  })
  const entries: EnvEntry[] = []
  for (const name of names) {
    const dir = path.join(root, name)
    // eslint-disable-next-line no-await-in-loop
    const metadata = await readRecord(ENV_KIND, dir)
    if (!metadata) continue
    // eslint-disable-next-line no-await-in-loop
    const [sizeBytes, used, users, mlflow] = await Promise.all([
      directorySize(envHome(dir, metadata)),
      lastUsed(dir),
      inUseBy(dir),
      installedMlflow(envHome(dir, metadata)),
    ])
    entries.push({...metadata, mlflow: mlflow ?? metadata.mlflow, dir, sizeBytes, lastUsed: used?.toISOString() ?? null, inUseBy: users})
  }

  return entries.sort((a, b) => (b.lastUsed ?? '').localeCompare(a.lastUsed ?? ''))
}

const UNITS: Record<string, number> = {s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000}

/** "30d", "12h", "90m", "2w" → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/i.exec(text)
  if (!match) {
    throw new MlserveError('INVALID_ARGUMENT', `Not a duration: '${text}'.`, {suggestions: ['Write a number and a unit: 90m, 12h, 30d, 2w.']})
  }

  return Number(match[1]) * UNITS[match[2]!.toLowerCase()]!
}

const SIZES: Record<string, number> = {b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4}

/** "500MB", "10GB", "1.5G", "2048" → bytes. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*$/i.exec(text)
  if (!match) {
    throw new MlserveError('INVALID_ARGUMENT', `Not a size: '${text}'.`, {suggestions: ['Write a number and a unit: 500MB, 10GB.']})
  }

  return Math.round(Number(match[1]) * SIZES[(match[2] || 'b').toLowerCase()]!)
}

export interface PrunePlan {
  readonly olderThanMs?: number
  readonly maxSizeBytes?: number
  readonly now?: number
}

/** Which envs to remove: unused for longer than olderThan, then least recently used until under maxSize. In-use envs never. */
export function selectForPrune(entries: readonly EnvEntry[], plan: PrunePlan): EnvEntry[] {
  const now = plan.now ?? Date.now()
  const removable = entries.filter((entry) => entry.inUseBy.length === 0)
  const chosen = new Set<EnvEntry>()
  if (plan.olderThanMs !== undefined) {
    for (const entry of removable) {
      const used = entry.lastUsed ? Date.parse(entry.lastUsed) : 0
      if (now - used > plan.olderThanMs) chosen.add(entry)
    }
  }

  if (plan.maxSizeBytes !== undefined) {
    let total = entries.reduce((sum, entry) => sum + (chosen.has(entry) ? 0 : entry.sizeBytes), 0)
    const oldestFirst = [...removable].sort((a, b) => (a.lastUsed ?? '').localeCompare(b.lastUsed ?? ''))
    for (const entry of oldestFirst) {
      if (total <= plan.maxSizeBytes) break
      if (chosen.has(entry)) continue
      chosen.add(entry)
      total -= entry.sizeBytes
    }
  }

  return entries.filter((entry) => chosen.has(entry))
}

/**
 * Removes one env under its build lock, with its conda prefix when it has one, re-checking that nobody
 * started using it meanwhile. False when it was kept.
 */
export async function removeEnv(root: string, entry: Pick<EnvEntry, 'key'>): Promise<boolean> {
  return removeEntry(ENV_KIND, root, entry.key, async (dir) => (await inUseBy(dir)).length > 0)
}
