// The build lock against crafted stale state (fault injection): an empty owner file, an owner record with
// this very pid, another host, a stale heartbeat; and the waiter's report and its bound.
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {parseOwner} from '../../../src/cache/lock-owner.js'
import {acquireLock, lockTimeoutMs, type LockWait} from '../../../src/cache/lock.js'

const roots: string[] = []
const newRoot = () => {
  roots.push(mkdtempSync(path.join(tmpdir(), 'mlserve-lock-')))
  return roots.at(-1)!
}

t.teardown(() => {
  for (const root of roots) rmSync(root, {recursive: true, force: true})
})

/** A lock directory as a crashed or foreign holder leaves it; `ageMs` backdates its heartbeat. */
function craftLock(root: string, key: string, owner: string | undefined, ageMs = 0): string {
  const lock = path.join(root, `${key}.lock`)
  mkdirSync(lock, {recursive: true})
  const file = path.join(lock, 'owner')
  if (owner !== undefined) writeFileSync(file, owner)
  const then = new Date(Date.now() - ageMs)
  if (owner !== undefined) utimesSync(file, then, then)
  utimesSync(lock, then, then)
  return lock
}

/** Resolves with the lock, or with 'still waiting' after ms (then the attempt is aborted). */
async function acquireWithin(root: string, key: string, ms: number, options: Parameters<typeof acquireLock>[2] = {}) {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), ms)
  try {
    return await acquireLock(root, key, {...options, signal: abort.signal})
  } catch (error) {
    if (abort.signal.aborted) return 'still waiting' as const
    throw error
  } finally {
    clearTimeout(timer)
  }
}

t.test('an empty owner file (a holder that died of ENOSPC) is taken over', async (t) => {
  const root = newRoot()
  craftLock(root, 'old', '', 60_000)
  const lock = await acquireWithin(root, 'old', 5000)
  t.not(lock, 'still waiting', 'an old lock without a readable owner is taken over at once')
  if (lock !== 'still waiting') await lock.release()

  craftLock(root, 'fresh', '')
  const fresh = await acquireWithin(root, 'fresh', 10_000, {ownerlessGraceMs: 300})
  t.not(fresh, 'still waiting', 'a fresh one after the short grace that covers its creation')
  if (fresh !== 'still waiting') await fresh.release()

  craftLock(root, 'garbage', '{"pid": "x"', 60_000)
  const garbage = await acquireWithin(root, 'garbage', 5000)
  t.not(garbage, 'still waiting', 'a half-written record too')
  if (garbage !== 'still waiting') await garbage.release()
})

t.test('an owner record with this very pid that this process does not hold (a reused pid) is taken over', async (t) => {
  const root = newRoot()
  craftLock(root, 'k', JSON.stringify({pid: process.pid, host: hostname(), since: '2026-01-01T00:00:00Z', token: 'not-ours'}))
  const lock = await acquireWithin(root, 'k', 5000)
  t.not(lock, 'still waiting')
  if (lock === 'still waiting') return
  const owner = parseOwner(readFileSync(path.join(root, 'k.lock', 'owner'), 'utf8'))
  t.equal(owner?.pid, process.pid)
  t.not(owner?.token, 'not-ours', 'the record is ours now')
  await lock.release()
  t.notOk(existsSync(path.join(root, 'k.lock')))

  // The legacy "<pid> <host>" record of older mlserves, with our pid: the same.
  craftLock(root, 'legacy', `${process.pid} ${hostname()}\n`)
  const legacy = await acquireWithin(root, 'legacy', 5000)
  t.not(legacy, 'still waiting')
  if (legacy !== 'still waiting') await legacy.release()
})

t.test('another host: waited for while its heartbeat is fresh, taken over once it is stale', async (t) => {
  const root = newRoot()
  const foreign = JSON.stringify({pid: 4242, host: 'build-node-7', since: '2026-11-25T10:00:00Z', token: 'x'})
  craftLock(root, 'stale', foreign, 10 * 60_000)
  const stale = await acquireWithin(root, 'stale', 5000)
  t.not(stale, 'still waiting', 'a heartbeat 10 min old: the holder is gone')
  if (stale !== 'still waiting') await stale.release()

  craftLock(root, 'fresh', foreign)
  const waits: LockWait[] = []
  const fresh = await acquireWithin(root, 'fresh', 1000, {onWait: (wait) => waits.push(wait)})
  t.equal(fresh, 'still waiting', 'a live foreign holder is waited for')
  t.equal(waits.length, 1, 'the waiter says so at once')
  t.equal(waits[0]?.owner.pid, 4242)
  t.match(
    waits[0]?.detail,
    /^pid 4242 on build-node-7, holding it since 2026-11-25T10:00:00Z, last heartbeat \d+ s ago; waited 0 s so far, giving up after 40 min \(MLSERVE_LOCK_TIMEOUT\)$/,
  )
})

t.test('the same host: a live holder with a stale heartbeat (a pid reused after an OOM kill) is taken over', async (t) => {
  const root = newRoot()
  // pid 1 is alive (and not this process): only the heartbeat can tell the record is stale.
  craftLock(root, 'k', JSON.stringify({pid: 1, host: hostname(), token: 'x'}), 10 * 60_000)
  const lock = await acquireWithin(root, 'k', 5000)
  t.not(lock, 'still waiting')
  if (lock !== 'still waiting') await lock.release()

  craftLock(root, 'dead', JSON.stringify({pid: 999_999_999, host: hostname(), token: 'x'}))
  const dead = await acquireWithin(root, 'dead', 5000)
  t.not(dead, 'still waiting', 'a dead holder of this host: taken over at once, whatever its heartbeat')
  if (dead !== 'still waiting') await dead.release()
})

t.test('a waiter gives up after its bound with LOCK_TIMEOUT, naming the holder and the lock', async (t) => {
  const root = newRoot()
  const lock = craftLock(root, 'k', JSON.stringify({pid: 4242, host: 'build-node-7', token: 'x'}))
  await t.rejects(acquireLock(root, 'k', {timeoutMs: 600, what: 'the environment k'}), {
    code: 'LOCK_TIMEOUT',
    exitCode: 70,
    message: `waiting for pid 4242 on build-node-7 to finish building the environment k (lock ${lock}).`,
    suggestions: [/remove .*k\.lock/, /MLSERVE_LOCK_TIMEOUT=<seconds> \(0: without a limit\)/],
  })
})

t.test("a holder's heartbeat keeps its lock fresh while the build runs, so it is never taken over", async (t) => {
  const root = newRoot()
  const lock = await acquireLock(root, 'k')
  const owner = path.join(root, 'k.lock', 'owner')
  const old = new Date(Date.now() - 10 * 60_000)
  utimesSync(owner, old, old)
  // Polls until the heartbeat (every 5 s) has refreshed the backdated record.
  while (statSync(owner).mtimeMs < Date.now() - 60_000) {
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 200))
  }

  t.equal(await acquireWithin(root, 'k', 1000), 'still waiting', 'a fresh heartbeat: waited for')
  await lock.release()
})

t.test('release never removes a lock another process took over meanwhile', async (t) => {
  const root = newRoot()
  const lock = await acquireLock(root, 'k')
  const other = JSON.stringify({pid: 4242, host: 'build-node-7', token: 'theirs'})
  writeFileSync(path.join(root, 'k.lock', 'owner'), other)
  await lock.release()
  t.equal(readFileSync(path.join(root, 'k.lock', 'owner'), 'utf8'), other)
})

t.test('owner records: JSON, and the legacy line', async (t) => {
  t.same(parseOwner('{"pid": 12, "host": "h", "token": "a"}'), {pid: 12, host: 'h', since: undefined, token: 'a'})
  t.same(parseOwner('12 h\n'), {pid: 12, host: 'h'})
  t.equal(parseOwner(''), undefined)
  t.equal(parseOwner('null'), undefined)
  t.equal(parseOwner('{"pid": 1.5, "host": "h"}'), undefined)
})

t.test('MLSERVE_LOCK_TIMEOUT: seconds, 0 for no limit, 40 min by default, anything else a usage error', async (t) => {
  t.equal(lockTimeoutMs({}), 2400 * 1000)
  t.equal(lockTimeoutMs({MLSERVE_LOCK_TIMEOUT: '90'}), 90_000)
  t.equal(lockTimeoutMs({MLSERVE_LOCK_TIMEOUT: '0'}), Number.POSITIVE_INFINITY)
  t.throws(() => lockTimeoutMs({MLSERVE_LOCK_TIMEOUT: 'soon'}), {
    code: 'INVALID_ARGUMENT',
    exitCode: 2,
    message: /MLSERVE_LOCK_TIMEOUT must be a number of seconds/,
  })
  t.throws(() => lockTimeoutMs({MLSERVE_LOCK_TIMEOUT: '-1'}), {code: 'INVALID_ARGUMENT'})
})
