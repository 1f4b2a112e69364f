// A build lock's owner record: who holds it (written atomically), whether that holder still counts as
// alive, and the takeover of a stale lock that no live holder refreshes.
import {randomBytes} from 'node:crypto'
import {readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import path from 'node:path'

/** A heartbeat older than this means the holder is gone (or frozen): its lock is taken over. */
export const STALE_MS = 60_000
/** A lock directory whose owner record cannot be read is taken over once it is this old (creation race). */
export const OWNERLESS_GRACE_MS = 5000

/** Who holds a lock, as its owner record says. */
export interface LockOwner {
  readonly pid: number
  readonly host: string
  /** When the holder took the lock (ISO), when known. */
  readonly since?: string
  readonly token?: string
}

/** The staleness bounds (for tests). */
export interface StaleBounds {
  readonly staleMs?: number
  readonly ownerlessGraceMs?: number
}

/** Tokens of the locks this process holds: an owner record with our pid and another token is a dead predecessor's. */
const held = new Set<string>()

/** Counts a token as one of this process's held locks. */
export const rememberHeld = (token: string): void => {
  held.add(token)
}

/** Stops counting a token as held (its lock is released). */
export const forgetHeld = (token: string): void => {
  held.delete(token)
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

/** A duration for messages: seconds below 90 s, else minutes. */
export const formatDuration = (ms: number) => (ms < 90_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`)

/**
 * Why the lock at `lock` may be taken over, or undefined while its holder counts as alive: the owner
 * record is unreadable (past a short grace), or is this very process's pid without one of its tokens
 * (a reused pid), or names a dead process of this host, or its heartbeat is older than `staleMs`.
 */
export async function staleReason(
  lock: string,
  options: StaleBounds = {},
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
    return {owner, heartbeatMs, reason: `its owner (pid ${owner.pid} on ${owner.host}) has not refreshed it for ${formatDuration(heartbeatMs)}`}
  }

  return {owner, heartbeatMs}
}

/** Writes the owner record atomically (a temporary file renamed into place): never a half-written record. */
export async function writeOwner(lock: string, owner: LockOwner): Promise<void> {
  const temporary = path.join(lock, `owner.${randomBytes(4).toString('hex')}.tmp`)
  await writeFile(temporary, JSON.stringify(owner) + '\n')
  await rename(temporary, path.join(lock, 'owner'))
}

/**
 * Moves a stale lock aside (rename is atomic: of two processes taking it over, one wins) and removes it.
 * If what was moved is no longer the record judged stale (another process took the lock over in
 * between), it is given back.
 */
export async function takeOver(lock: string, judged: LockOwner | undefined): Promise<void> {
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
