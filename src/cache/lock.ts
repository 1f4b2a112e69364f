// The per-key build lock of every build-once cache: take it (mkdir is atomic), keep its heartbeat fresh,
// take over a stale one, and wait for a live holder saying whom it waits for, giving up after a bound.
import {randomBytes} from 'node:crypto'
import {mkdir, readFile, rm, utimes} from 'node:fs/promises'
import {hostname} from 'node:os'
import path from 'node:path'

import type {EnvVars} from '../config.js'
import {MlserveError} from '../errors.js'
import {sleep} from '../util/abort.js'
import {cacheIoError} from './io-error.js'
import {
  type LockOwner,
  STALE_MS,
  type StaleBounds,
  forgetHeld,
  formatDuration,
  parseOwner,
  rememberHeld,
  staleReason,
  takeOver,
  writeOwner,
} from './lock-owner.js'

/** How often a holder refreshes its heartbeat (the owner file's mtime). */
export const HEARTBEAT_MS = 5000
/** How long a waiter waits by default (MLSERVE_LOCK_TIMEOUT): longer than the default build timeout. */
export const DEFAULT_LOCK_TIMEOUT_S = 2400
const POLL_MS = 250
/** A waiter repeats who it waits for this often. */
const REMIND_MS = 30_000

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

export interface LockOptions extends StaleBounds {
  readonly onWait?: (wait: LockWait) => void
  /** Told when a stale lock is taken over, and why (a line for the log). */
  readonly onTakeOver?: (message: string) => void
  readonly signal?: AbortSignal
  /** Give up waiting after this long with LOCK_TIMEOUT (0 or undefined: the default; Infinity: never). */
  readonly timeoutMs?: number
  /** What the lock protects, for messages (e.g. "the environment 3f2a..."). */
  readonly what?: string
}

/** A held lock: release it once (a lock another process took over meanwhile is left to that process). */
export interface HeldLock {
  readonly release: () => Promise<void>
}

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
        ? `giving up after ${formatDuration(timeoutMs)} (MLSERVE_LOCK_TIMEOUT)`
        : 'waiting without a limit (MLSERVE_LOCK_TIMEOUT=0)'
      const detail = `pid ${owner.pid} on ${owner.host === hostname() ? 'this host' : owner.host}${held}, last heartbeat ${formatDuration(heartbeatMs ?? 0)} ago; waited ${formatDuration(waitedMs)} so far, ${limit}`
      options.onWait?.({owner, waitedMs, timeoutMs, detail})
    }

    if (waitedMs >= timeoutMs) {
      const who = owner ? `pid ${owner.pid} on ${owner.host}` : 'another process'
      throw new MlserveError(
        'LOCK_TIMEOUT',
        `Gave up after ${formatDuration(waitedMs)} waiting for ${who} to finish building ${options.what ?? key} (lock ${lock}).`,
        {
          suggestions: [
            `If that process is stuck or gone, stop it or remove ${lock}; it is also taken over by itself once its heartbeat is ${formatDuration(options.staleMs ?? STALE_MS)} old.`,
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

  rememberHeld(owner.token!)
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
      forgetHeld(owner.token!)
      // Never remove a lock another process has taken over meanwhile.
      if (await stillOurs()) await rm(lock, {recursive: true, force: true})
    },
  }
}
