// The per-key build lock of every build-once cache: an atomic owner record, a heartbeat, takeover of
// stale locks, and a waiter that says whom it waits for and gives up after a bound.
import {randomBytes} from 'node:crypto'
import {mkdir, readFile, rename, rm, stat, utimes, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import path from 'node:path'

import type {EnvVars} from '../config.js'
import {MlserveError} from '../errors.js'
import {sleep} from '../util/abort.js'
import {cacheIoError} from './io-error.js'

/** How often a holder refreshes its heartbeat (the owner file's mtime). */
export const HEARTBEAT_MS = 5000
/** A heartbeat older than this means the holder is gone (or frozen): its lock is taken over. */
export const STALE_MS = 60_000
/** A lock directory whose owner record cannot be read is taken over once it is this old (creation race). */
export const OWNERLESS_GRACE_MS = 5000
/** How long a waiter waits by default (MLSERVE_LOCK_TIMEOUT): longer than the default build timeout. */
export const DEFAULT_LOCK_TIMEOUT_S = 2400
const POLL_MS = 250
/** A waiter repeats who it waits for this often. */
const REMIND_MS = 30_000

/** Who holds a lock, as its owner record says. */
export interface LockOwner {
  readonly pid: number
  readonly host: string
  /** When the holder took the lock (ISO), when known. */
  readonly since?: string
  readonly token?: string
}

/** What a waiter is told: first when it starts waiting, then every 30 s. */
export interface LockWait {
  readonly owner: LockOwner
  /** How long this process has waited so far. */
  readonly waitedMs: number
  /** When it gives up (0: never). */
  readonly timeoutMs: number
  /** One line: whom it waits for and for how long, for the log. */
  readonly detail: string
}

export interface LockOptions {
  readonly onWait?: (wait: LockWait) => void
  /** Told when a stale lock is taken over, and why (a line for the log). */
  readonly onTakeOver?: (message: string) => void
  readonly signal?: AbortSignal
  /** Give up waiting after this long with LOCK_TIMEOUT (0 or undefined: the default; Infinity: never). */
  readonly timeoutMs?: number
  /** What the lock protects, for messages (e.g. "the environment 3f2a..."). */
  readonly what?: string
  /** For tests: the staleness bounds. */
  readonly staleMs?: number
  readonly ownerlessGraceMs?: number
}

/** A held lock: release it once (a lock another process took over meanwhile is left to that process). */
export interface HeldLock {
  readonly release: () => Promise<void>
}

/** Tokens of the locks this process holds: an owner record with our pid and another token is a dead predecessor's. */
const held = new Set<string>()

/** MLSERVE_LOCK_TIMEOUT (seconds; 0: wait forever) in milliseconds. */
export function lockTimeoutMs(env: EnvVars): number {
  const text = env.MLSERVE_LOCK_TIMEOUT
  if (text === undefined || text.trim() === '') return DEFAULT_LOCK_TIMEOUT_S * 1000
  const seconds = Number(text)
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new MlserveError('INVALID_ARGUMENT', `MLSERVE_LOCK_TIMEOUT must be a number of seconds (0: wait forever), not '${text}'.`)
  }

  return seconds === 0 ? Number.POSITIVE_INFINITY : seconds * 1000
}

/** Whether a process of this host with that pid exists (EPERM: it does, as another user's). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The owner record: JSON, or the `<pid> <host>` line older mlserves wrote. Undefined when unreadable. */
export function parseOwner(text: string): LockOwner | undefined {
  try {
    const record = JSON.parse(text) as Partial<LockOwner> | null
    if (record && typeof record === 'object' && Number.isInteger(record.pid) && typeof record.host === 'string') {
      return {pid: record.pid!, host: record.host, since: record.since, token: record.token}
    }
  } catch {
    const legacy = /^(\d+) (\S+)\s*$/.exec(text)
    if (legacy) return {pid: Number(legacy[1]), host: legacy[2]!}
  }

  return undefined
}

const seconds = (ms: number) => (ms < 90_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`)

/**
 * Why the lock at `lock` may be taken over, or undefined while its holder counts as alive: the owner
 * record is unreadable (past a short grace), or is this very process's pid without one of its tokens
 * (a reused pid), or names a dead process of this host, or its heartbeat is older than `staleMs`.
 */
export async function staleReason(
  lock: string,
  options: Pick<LockOptions, 'staleMs' | 'ownerlessGraceMs'> = {},
  now = Date.now(),
): Promise<{reason?: string; owner?: LockOwner; heartbeatMs?: number}> {
  const ownerFile = path.join(lock, 'owner')
  const [text, info, dirInfo] = await Promise.all([
    readFile(ownerFile, 'utf8').catch(() => undefined),
    stat(ownerFile).catch(() => undefined),
    stat(lock).catch(() => undefined),
  ])
  if (!dirInfo) return {}
  const owner = text === undefined ? undefined : parseOwner(text)
  if (!owner) {
    const age = now - dirInfo.mtimeMs
    return age > (options.ownerlessGraceMs ?? OWNERLESS_GRACE_MS)
      ? {reason: `its owner record is ${text === undefined ? 'missing' : 'unreadable'}`}
      : {}
  }

  const heartbeatMs = now - (info?.mtimeMs ?? dirInfo.mtimeMs)
  if (owner.pid === process.pid && owner.host === hostname() && !(owner.token && held.has(owner.token))) {
    return {
      owner,
      heartbeatMs,
      reason: `it names this very process (pid ${owner.pid}), which does not hold it: a previous process with the same pid`,
    }
  }

  if (owner.host === hostname() && !isAlive(owner.pid)) return {owner, heartbeatMs, reason: `its owner (pid ${owner.pid}) is gone`}
  if (heartbeatMs > (options.staleMs ?? STALE_MS)) {
    return {owner, heartbeatMs, reason: `its owner (pid ${owner.pid} on ${owner.host}) has not refreshed it for ${seconds(heartbeatMs)}`}
  }

  return {owner, heartbeatMs}
}

/** Writes the owner record atomically (a temporary file renamed into place): never a half-written record. */
async function writeOwner(lock: string, owner: LockOwner): Promise<void> {
  const temporary = path.join(lock, `owner.${randomBytes(4).toString('hex')}.tmp`)
  await writeFile(temporary, JSON.stringify(owner) + '\n')
  await rename(temporary, path.join(lock, 'owner'))
}

/**
 * Moves a stale lock aside (rename is atomic: of two processes taking it over, one wins) and removes it.
 * If what was moved is no longer the record judged stale (another process took the lock over in
 * between), it is given back.
 */
async function takeOver(lock: string, judged: LockOwner | undefined): Promise<void> {
  const aside = `${lock}.stale-${randomBytes(4).toString('hex')}`
  try {
    await rename(lock, aside)
  } catch {
    return
  }

  const moved = parseOwner(await readFile(path.join(aside, 'owner'), 'utf8').catch(() => ''))
  if (moved && (moved.token !== judged?.token || moved.pid !== judged?.pid)) {
    await rename(aside, lock).catch(() => {})
    return
  }

  await rm(aside, {recursive: true, force: true})
}

/**
 * Takes `<root>/<key>.lock` (mkdir is atomic) and keeps its heartbeat fresh until released. A stale lock
 * (see staleReason) is taken over; a live holder is waited for, with `onWait` told whom and for how long,
 * until `timeoutMs` (then LOCK_TIMEOUT). Rejects with the abort reason if `signal` aborts while waiting.
 */
export async function acquireLock(root: string, key: string, options: LockOptions = {}): Promise<HeldLock> {
  const lock = path.join(root, `${key}.lock`)
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_S * 1000
  const started = Date.now()
  let lastTold = Number.NEGATIVE_INFINITY
  await mkdir(root, {recursive: true}).catch((error: unknown) => {
    throw cacheIoError(error, root)
  })
  for (;;) {
    options.signal?.throwIfAborted()
    // eslint-disable-next-line no-await-in-loop
    const taken = await tryLock(lock)
    if (taken) return taken

    // eslint-disable-next-line no-await-in-loop
    const {reason, owner, heartbeatMs} = await staleReason(lock, options)
    if (reason) {
      options.onTakeOver?.(`taking over the lock ${lock}: ${reason}`)
      // eslint-disable-next-line no-await-in-loop
      await takeOver(lock, owner)
      continue
    }

    const waitedMs = Date.now() - started
    if (owner && Date.now() - lastTold >= REMIND_MS) {
      lastTold = Date.now()
      const held = owner.since ? `, holding it since ${owner.since}` : ''
      const limit = Number.isFinite(timeoutMs)
        ? `giving up after ${seconds(timeoutMs)} (MLSERVE_LOCK_TIMEOUT)`
        : 'waiting without a limit (MLSERVE_LOCK_TIMEOUT=0)'
      const detail = `pid ${owner.pid} on ${owner.host === hostname() ? 'this host' : owner.host}${held}, last heartbeat ${seconds(heartbeatMs ?? 0)} ago; waited ${seconds(waitedMs)} so far, ${limit}`
      options.onWait?.({owner, waitedMs, timeoutMs, detail})
    }

    if (waitedMs >= timeoutMs) {
      const who = owner ? `pid ${owner.pid} on ${owner.host}` : 'another process'
      throw new MlserveError(
        'LOCK_TIMEOUT',
        `Gave up after ${seconds(waitedMs)} waiting for ${who} to finish building ${options.what ?? key} (lock ${lock}).`,
        {
          suggestions: [
            `If that process is stuck or gone, stop it or remove ${lock}; it is also taken over by itself once its heartbeat is ${seconds(options.staleMs ?? STALE_MS)} old.`,
            'Or wait longer: MLSERVE_LOCK_TIMEOUT=<seconds> (0: without a limit).',
          ],
        },
      )
    }

    // eslint-disable-next-line no-await-in-loop
    await sleep(POLL_MS, options.signal)
  }
}

/** One attempt: the lock directory, then the owner record; undefined if another process holds it. */
async function tryLock(lock: string): Promise<HeldLock | undefined> {
  try {
    await mkdir(lock)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return undefined
    throw cacheIoError(error, path.dirname(lock))
  }

  const owner: LockOwner = {pid: process.pid, host: hostname(), since: new Date().toISOString(), token: randomBytes(8).toString('hex')}
  try {
    await writeOwner(lock, owner)
  } catch (error) {
    // A disk that is full (ENOSPC) must not leave a lock without a readable owner behind.
    await rm(lock, {recursive: true, force: true}).catch(() => {})
    throw cacheIoError(error, path.dirname(lock))
  }

  held.add(owner.token!)
  const ownerFile = path.join(lock, 'owner')
  const stillOurs = async () => parseOwner(await readFile(ownerFile, 'utf8').catch(() => ''))?.token === owner.token
  // The heartbeat: the owner file's mtime, refreshed while the build runs (a frozen or dead holder stops refreshing it).
  const heartbeat = setInterval(async () => {
    if (!(await stillOurs())) return clearInterval(heartbeat)
    const now = new Date()
    await utimes(ownerFile, now, now).catch(() => {})
  }, HEARTBEAT_MS).unref()
  let released = false
  return {
    async release() {
      if (released) return
      released = true
      clearInterval(heartbeat)
      held.delete(owner.token!)
      // Never remove a lock another process has taken over meanwhile.
      if (await stillOurs()) await rm(lock, {recursive: true, force: true})
    },
  }
}
