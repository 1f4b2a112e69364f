// The build-once directory cache shared by environments, models and tools: one directory per content
// key, built in a temporary directory under the key's lock, marked complete and renamed into place, so a
// half-built, damaged or concurrently built entry is never used. Each kind says how to check and dispose.
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readFile, readdir, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {MlserveError} from '../errors.js'
import {pathExists} from '../util/fs.js'
import {cacheIoError} from './io-error.js'
import {acquireLock, type LockWait} from './lock.js'

/** Written last, just before the rename: a directory without a valid one is not a cache entry. (The name predates models and tools.) */
export const MARKER = '.mlserve-env.json'

/** What every marker holds; each kind adds its own fields. */
export interface CacheRecord {
  readonly key: string
  readonly created: string
}

/** One kind of cache entry (an environment, a downloaded model, a tool). */
export interface CacheKind<R extends CacheRecord> {
  /** For messages: "environment", "model", "tool". */
  readonly name: string
  /** The marker's record, or undefined when it is not one (a damaged marker). */
  readonly parse: (value: unknown) => R | undefined
  /** A cheap check of a complete entry before it is used: why it is damaged, or undefined. */
  readonly verify?: (dir: string, record: R) => Promise<string | undefined>
  /** Removes what the entry owns outside its directory (a conda prefix); the directory itself is removed after. */
  readonly dispose?: (dir: string, record: R) => Promise<void>
}

/** A stable content key: sha256 of canonical JSON, shortened. */
export function contentKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 24)
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** The base check every kind's parse starts with: an object with a string key and creation time. */
export function parseBaseRecord(value: unknown): (CacheRecord & Record<string, unknown>) | undefined {
  return isRecord(value) && typeof value.key === 'string' && typeof value.created === 'string'
    ? (value as CacheRecord & Record<string, unknown>)
    : undefined
}

/** The entry's marker: the record, `damaged` when the marker exists but is not a record, or undefined when absent. */
export async function readMarker<R extends CacheRecord>(kind: CacheKind<R>, dir: string): Promise<R | 'damaged' | undefined> {
  let text: string
  try {
    text = await readFile(path.join(dir, MARKER), 'utf8')
  } catch {
    return undefined
  }

  try {
    return kind.parse(JSON.parse(text)) ?? 'damaged'
  } catch {
    return 'damaged'
  }
}

/** The entry's record when it is complete, else undefined. */
export async function readRecord<R extends CacheRecord>(kind: CacheKind<R>, dir: string): Promise<R | undefined> {
  const marker = await readMarker(kind, dir)
  return marker === 'damaged' ? undefined : marker
}

export interface BuildContext {
  /** Where the entry will live once built (the build happens in a temporary directory). */
  readonly finalDir: string
  /** Aborts on the caller's signal and when the build timeout passes: hand it to every child process. */
  readonly signal: AbortSignal
}

export interface BuildRequest<R extends CacheRecord> {
  readonly kind: CacheKind<R>
  readonly root: string
  readonly key: string
  /** Builds the entry into `dir`, a fresh temporary directory. May return record fields known only after the build. */
  readonly build: (dir: string, context: BuildContext) => Promise<Partial<R> | void>
  readonly record: Omit<R, 'key' | 'created'>
  /** Told whom this process waits for, at first and then every 30 s. */
  readonly onWait?: (wait: LockWait) => void
  /** Told when a stale lock (its holder gone) is taken over, and why. */
  readonly onTakeOver?: (message: string) => void
  /** Told why a complete entry is rebuilt. */
  readonly onDamaged?: (reason: string) => void
  readonly signal?: AbortSignal
  /** How long to wait for another process's build (default: MLSERVE_LOCK_TIMEOUT's default; Infinity: forever). */
  readonly lockTimeoutMs?: number
  /** How long the build may take (0 or undefined: no limit); then BUILD_TIMEOUT and nothing is kept. */
  readonly buildTimeoutMs?: number
}

export interface CacheEntry<R extends CacheRecord> {
  readonly dir: string
  readonly record: R
  /** False when an existing complete entry was reused. */
  readonly built: boolean
}

/** Why the entry at dir cannot be used: undefined when it is complete and sound, or absent. */
async function damageOf<R extends CacheRecord>(kind: CacheKind<R>, dir: string): Promise<{record?: R; damage?: string}> {
  const marker = await readMarker(kind, dir)
  if (marker === undefined) return {}
  if (marker === 'damaged') return {damage: `its marker ${path.join(dir, MARKER)} is not a valid record`}
  const damage = await kind.verify?.(dir, marker)
  return {record: marker, damage}
}

/** Returns the complete entry for the key, building it at most once across concurrent processes. */
export async function ensureBuilt<R extends CacheRecord>(request: BuildRequest<R>): Promise<CacheEntry<R>> {
  const {kind, root, key} = request
  const finalDir = path.join(root, key)
  const first = await damageOf(kind, finalDir)
  if (first.record && !first.damage) return {dir: finalDir, record: first.record, built: false}

  const lock = await acquireLock(root, key, {
    onWait: request.onWait,
    onTakeOver: request.onTakeOver,
    signal: request.signal,
    timeoutMs: request.lockTimeoutMs,
    what: `the ${kind.name} ${key}`,
  })
  const tmp = path.join(root, `.tmp-${key}-${process.pid}-${randomBytes(4).toString('hex')}`)
  // A timer of its own, not AbortSignal.timeout (unref'd): a build must end at its bound even when nothing else keeps Node running.
  const timeoutController = request.buildTimeoutMs ? new AbortController() : undefined
  const timer = timeoutController && setTimeout(() => timeoutController.abort(new Error('build timeout')), request.buildTimeoutMs)
  const timeout = timeoutController?.signal
  try {
    const now = await damageOf(kind, finalDir)
    if (now.record && !now.damage) return {dir: finalDir, record: now.record, built: false}
    if (now.damage) {
      request.onDamaged?.(now.damage)
      if (now.record) await kind.dispose?.(finalDir, now.record)
    }

    // Whatever is here without a marker, or in a temporary directory for this key, is a dead build's.
    await removeLeftovers(root, key)
    await mkdir(tmp).catch((error: unknown) => {
      throw cacheIoError(error, root)
    })
    const signals = [request.signal, timeout].filter((signal): signal is AbortSignal => signal !== undefined)
    const signal = signals.length === 1 ? signals[0]! : AbortSignal.any(signals)
    let learned: Partial<R> | void
    try {
      learned = await request.build(tmp, {finalDir, signal})
    } catch (error) {
      if (timeout?.aborted && !request.signal?.aborted) throw buildTimeoutError(request.kind.name, request, error)
      throw cacheIoError(error, root)
    }

    const record = {...request.record, ...learned, key, created: new Date().toISOString()} as unknown as R
    try {
      await writeFile(path.join(tmp, MARKER), JSON.stringify(record, null, 2) + '\n')
      await rename(tmp, finalDir)
    } catch (error) {
      // Another process took the lock over from this one and finished first: its entry is as good.
      const winner = await damageOf(kind, finalDir)
      if (winner.record && !winner.damage) return {dir: finalDir, record: winner.record, built: false}
      throw cacheIoError(error, root)
    }

    return {dir: finalDir, record, built: true}
  } finally {
    clearTimeout(timer)
    await rm(tmp, {recursive: true, force: true}).catch(() => {})
    await lock.release().catch(() => {})
  }
}

function buildTimeoutError(kind: string, request: {root: string; key: string; buildTimeoutMs?: number}, cause: unknown): MlserveError {
  const seconds = Math.round(request.buildTimeoutMs! / 1000)
  return new MlserveError(
    'BUILD_TIMEOUT',
    `Building the ${kind} ${request.key} took longer than the build timeout (${seconds} s): the installer was stopped and nothing was kept. Installer logs: ${path.join(request.root, 'logs')}.`,
    {
      cause,
      suggestions: [
        'Allow more time with --build-timeout SECONDS (MLSERVE_BUILD_TIMEOUT; 0: no limit), or check why the installer is slow (its log).',
      ],
    },
  )
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
 * Removes one entry under its build lock, with what it owns elsewhere (the kind's dispose), unless
 * `inUse` says it is in use (checked again under the lock). False when it was kept.
 */
export async function removeEntry<R extends CacheRecord>(
  kind: CacheKind<R>,
  root: string,
  key: string,
  inUse: (dir: string) => Promise<boolean> = async () => false,
): Promise<boolean> {
  const dir = path.join(root, key)
  const lock = await acquireLock(root, key, {what: `the ${kind.name} ${key}`})
  try {
    if (await inUse(dir)) return false
    const record = await readRecord(kind, dir)
    if (record) await kind.dispose?.(dir, record)
    await rm(dir, {recursive: true, force: true})
    return true
  } finally {
    await lock.release()
  }
}

/** A kind's verify helper: the files an entry must have, relative to its directory. */
export async function missingFile(dir: string, files: readonly string[]): Promise<string | undefined> {
  for (const file of files) {
    // eslint-disable-next-line no-await-in-loop
    if (!(await pathExists(path.join(dir, file)))) return `${path.join(dir, file)} is missing`
  }

  return undefined
}
