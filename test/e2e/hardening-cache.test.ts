// Fault injection against the environment cache through `mlserve prepare-env`, on state crafted by the
// test: locks left by dead, foreign, reused-pid or ENOSPC-killed holders, a live holder that never
// finishes, damaged cached environments, an installer that outlives --build-timeout, a full disk.
import {execFileSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync, chmodSync} from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {MLSERVE_BIN, isAlive, spawnProc, startMlserve, type CliResult} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-hardening-cache-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))
const model = path.join(scratch, 'model')
cpSync(fixtureModel('sum'), model, {recursive: true})

/** How long a run may take before the test calls it hung (a guard against the old behaviour, not a performance bound). */
const HANG_MS = Number(process.env.MLSERVE_TEST_HANG_MS ?? 240_000)

/** Runs argv to completion, or kills it once it has hung for HANG_MS (then `hung`). */
async function run(file: string, args: readonly string[], env: Record<string, string>): Promise<CliResult & {hung: boolean}> {
  const proc = spawnProc(file, args, {env})
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), HANG_MS)
  })
  const first = await Promise.race([proc.exited, hang])
  clearTimeout(timer)
  if (first === 'hung') proc.child.kill('SIGKILL')
  const exit = await proc.exited
  return {...exit, hung: first === 'hung', stdout: proc.stdout(), stderr: proc.stderr()}
}

const envFor = (root: string, extra: Record<string, string> = {}) => toolchainEnv({MLSERVE_ENV_ROOT: root, ...extra})
const prepare = (root: string, extra: Record<string, string> = {}, args: string[] = []) =>
  run(process.execPath, [MLSERVE_BIN, 'prepare-env', '-m', model, ...args], envFor(root, extra))

/** A lock as its holder left it; `ageMs` backdates its heartbeat. */
function craftLock(root: string, key: string, owner: string, ageMs = 0): string {
  const lock = path.join(root, `${key}.lock`)
  mkdirSync(lock, {recursive: true})
  writeFileSync(path.join(lock, 'owner'), owner)
  const then = new Date(Date.now() - ageMs)
  utimesSync(path.join(lock, 'owner'), then, then)
  utimesSync(lock, then, then)
  return lock
}

/** What is left in a root besides complete envs and logs: temporary dirs, locks, unmarked dirs. */
const debris = (root: string) =>
  existsSync(root) ? readdirSync(root).filter((name) => name !== 'logs' && !existsSync(path.join(root, name, '.mlserve-env.json'))) : []

const root = path.join(scratch, 'root')
let key = ''
let envDir = ''

t.test('a first build, to learn the key', async (t) => {
  const result = await prepare(root)
  t.equal(result.code, 0, result.stderr)
  envDir = path.dirname(path.dirname(result.stdout.trim()))
  key = path.basename(envDir)
  t.match(key, /^[0-9a-f]{24}$/)
})

t.test('damaged cached environments are rebuilt, saying why, instead of trusted', async (t) => {
  const site = () => path.join(envDir, 'lib', readdirSync(path.join(envDir, 'lib'))[0]!, 'site-packages')
  for (const [what, damage, reason] of [
    [
      'a marker that is not an object',
      () => writeFileSync(path.join(envDir, '.mlserve-env.json'), '[]'),
      /is damaged: its marker \S+ is not a valid record; building it again/,
    ],
    [
      'a removed interpreter',
      () => rmSync(path.join(envDir, 'bin', 'python')),
      /is damaged: its interpreter \S+\/bin\/python is gone; building it again/,
    ],
    [
      'a removed mlflow',
      () => rmSync(path.join(site(), 'mlflow'), {recursive: true}),
      /is damaged: mlflow is no longer installed in it .*; building it again/,
    ],
  ] as const) {
    damage()
    // eslint-disable-next-line no-await-in-loop
    const result = await prepare(root)
    t.equal(result.code, 0, `${what}: ${result.stderr}`)
    t.match(result.stderr, reason, what)
    t.match(result.stderr, /building environment /, `${what}: built again`)
    t.ok(existsSync(path.join(envDir, 'bin', 'python')))
  }

  t.same(debris(root), [])
})

t.test('stale locks are taken over; nothing waits forever for a holder that is gone', async (t) => {
  const cases: Array<[string, () => void, RegExp]> = [
    [
      'an empty owner file (its holder died of ENOSPC)',
      () => craftLock(root, key, '', 60_000),
      /taking over the lock \S+: its owner record is unreadable/,
    ],
    [
      'another host whose heartbeat is 10 min old',
      () => craftLock(root, key, JSON.stringify({pid: 4242, host: 'build-node-7', token: 'x'}), 10 * 60_000),
      /taking over the lock \S+: its owner \(pid 4242 on build-node-7\) has not refreshed it for 10 min/,
    ],
  ]
  for (const [what, craft, message] of cases) {
    rmSync(envDir, {recursive: true, force: true})
    craft()
    // eslint-disable-next-line no-await-in-loop
    const result = await prepare(root)
    t.notOk(result.hung, `${what}: did not hang`)
    t.equal(result.code, 0, `${what}: ${result.stderr}`)
    t.match(result.stderr, message, what)
    t.same(debris(root), [], `${what}: no lock left`)
  }
})

t.test("an owner record with mlserve's own pid (a container restarted after an OOM kill) is taken over", async (t) => {
  rmSync(envDir, {recursive: true, force: true})
  const lock = path.join(root, `${key}.lock`)
  mkdirSync(lock, {recursive: true})
  // The shell writes the record with its pid, then becomes mlserve with the same pid (exec).
  const script = `printf '{"pid": %d, "host": "%s", "token": "a-previous-life"}' $$ "$HOST_NAME" > "$LOCK/owner"; exec "$NODE" "$BIN" prepare-env -m "$MODEL"`
  const result = await run(
    '/bin/sh',
    ['-c', script],
    envFor(root, {HOST_NAME: hostname(), LOCK: lock, NODE: process.execPath, BIN: MLSERVE_BIN, MODEL: model}),
  )
  t.notOk(result.hung, 'it does not wait for itself')
  t.equal(result.code, 0, result.stderr)
  t.match(result.stderr, /taking over the lock \S+: it names this very process \(pid \d+\), which does not hold it/)
  t.same(debris(root), [])
})

t.test('a live holder that never finishes: the waiter says whom it waits for, then gives up (MLSERVE_LOCK_TIMEOUT)', async (t) => {
  rmSync(envDir, {recursive: true, force: true})
  const lock = craftLock(root, key, JSON.stringify({pid: 4242, host: 'build-node-7', since: '2026-11-25T10:00:00.000Z', token: 'x'}))
  // The foreign holder's heartbeat stays fresh for as long as this test runs.
  const beat = setInterval(() => utimesSync(path.join(lock, 'owner'), new Date(), new Date()), 1000)
  t.teardown(() => clearInterval(beat))
  const result = await prepare(root, {MLSERVE_LOCK_TIMEOUT: '3'})
  clearInterval(beat)
  t.notOk(result.hung)
  t.equal(result.code, 70, result.stderr)
  t.match(
    result.stderr,
    /waiting for another mlserve \(pid 4242\) that is building this environment: pid 4242 on build-node-7, holding it since 2026-11-25T10:00:00.000Z, last heartbeat \d+ s ago; waited 0 s so far, giving up after 3 s \(MLSERVE_LOCK_TIMEOUT\)/,
  )
  t.match(
    result.stderr,
    `Error: Gave up after 3 s waiting for pid 4242 on build-node-7 to finish building the environment ${key} (lock ${lock}).`,
  )
  t.match(result.stderr, /code: LOCK_TIMEOUT \(exit 70\)/)
  t.ok(existsSync(lock), "the live holder's lock is left alone")
  rmSync(lock, {recursive: true, force: true})
})

t.test('--build-timeout: the installer and everything it started are killed, nothing half-built is kept', async (t) => {
  const slowRoot = path.join(scratch, 'slow-root')
  const pids = path.join(scratch, 'pids')
  mkdirSync(pids)
  // A stand-in uv whose `uv venv` never ends, with a child of its own (as uv and pip have).
  const fakeUv = path.join(scratch, 'slow-uv')
  writeFileSync(fakeUv, `#!/bin/sh\necho $$ > "$FAKE_UV_PIDS/uv"\nsleep 600 &\necho $! > "$FAKE_UV_PIDS/child"\nwait\n`)
  chmodSync(fakeUv, 0o755)
  const result = await prepare(slowRoot, {MLSERVE_UV: fakeUv, FAKE_UV_PIDS: pids}, ['--build-timeout', '2'])
  t.notOk(result.hung)
  t.equal(result.code, 71, result.stderr)
  t.match(
    result.stderr,
    /Error: Building the environment \w+ took longer than the build timeout \(2 s\): the installer was stopped and nothing was kept\./,
  )
  t.match(result.stderr, /hint: Allow more time with --build-timeout SECONDS \(MLSERVE_BUILD_TIMEOUT; 0: no limit\)/)
  for (const name of ['uv', 'child']) {
    const pid = Number(readFileSync(path.join(pids, name), 'utf8'))
    // Polls: a killed process may take a moment to be reaped.
    for (let i = 0; i < 100 && isAlive(pid); i++) {
      // eslint-disable-next-line no-await-in-loop
      await new Promise((resolve) => setTimeout(resolve, 100))
    }

    t.notOk(isAlive(pid), `the installer's ${name} process is gone`)
    if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  }

  t.same(debris(slowRoot), [], 'no temporary directory, no lock')
})

/** Whether this machine lets the test make a private mount namespace (unprivileged users too, where allowed). */
function canUnshare(): boolean {
  try {
    execFileSync('unshare', ['-rm', 'true'], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

const noUnshare = canUnshare() ? false : 'unshare -rm is not available here: no private tmpfs to fill'
t.test('a full disk (ENOSPC) is a clear error naming the directory, and leaves no lock behind', {skip: noUnshare}, async (t) => {
  const fullRoot = path.join(scratch, 'full-root')
  mkdirSync(fullRoot)
  // A private mount namespace (as an unprivileged user too) with a tiny tmpfs filled to the brim as the env root.
  const script = [
    'mount -t tmpfs -o size=64k tmpfs "$MLSERVE_ENV_ROOT" || exit 99',
    'head -c 1048576 /dev/zero > "$MLSERVE_ENV_ROOT/filler" 2>/dev/null',
    '"$NODE" "$BIN" prepare-env -m "$MODEL"',
    'echo "exit=$?"',
    'ls -a "$MLSERVE_ENV_ROOT"',
  ].join('\n')
  const result = await run('unshare', ['-rm', 'sh', '-c', script], envFor(fullRoot, {NODE: process.execPath, BIN: MLSERVE_BIN, MODEL: model}))
  t.notOk(result.hung)
  t.match(result.stdout, /^exit=72$/m, result.stderr)
  t.match(result.stderr, `Error: Could not write to ${fullRoot}: no space left on the device [ENOSPC] (write).`)
  t.match(result.stderr, /code: CACHE_IO_FAILED \(exit 72\)/)
  t.notMatch(result.stderr, /^\s+at /m, 'no stack trace')
  t.notMatch(result.stdout, /\.lock$/m, 'no lock with an empty owner is left for the next start to wait on')
})

t.test('an environment removed while serving: the scorer restarts exit 127 and the log says why', async (t) => {
  const server = await startMlserve(['-m', model, '--env-manager', 'virtualenv'], {env: envFor(root)})
  t.teardown(() => server.stop('SIGKILL'))
  const scorerPid = execFileSync('pgrep', ['-P', String(server.child.pid)], {encoding: 'utf8'})
    .split('\n')
    .map(Number)
    .find((pid) => pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('uvicorn'))
  t.ok(scorerPid, 'the scorer is a child of mlserve')
  rmSync(envDir, {recursive: true, force: true})
  process.kill(scorerPid!, 'SIGKILL')
  await server.waitForOutput(
    /environment \S+ was removed or damaged while mlserve was serving \(.*\): restarts of the scorer cannot succeed; restart mlserve/,
    60_000,
  )
  t.match(server.stderr(), /exited with code 127/)
})
