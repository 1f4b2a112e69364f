// The build-once cache against crafted damage: a marker that is not a record, an env whose interpreter or
// mlflow is gone, a build that outlives its timeout, a file-system error, and prune's per-kind dispose.
import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {MARKER, ensureBuilt, type CacheKind, type CacheRecord} from '../../../src/cache/build-once.js'
import {ENV_KIND, envDamage, type EnvMetadata} from '../../../src/env/cache.js'
import {diagnoseEnv} from '../../../src/env/env.js'
import {listEnvs, removeEnv} from '../../../src/env/inventory.js'

const roots: string[] = []
const newRoot = () => {
  roots.push(mkdtempSync(path.join(tmpdir(), 'mlserve-build-once-')))
  return roots.at(-1)!
}

t.teardown(() => {
  for (const root of roots) rmSync(root, {recursive: true, force: true})
})

/** The files envDamage looks for: bin/python (here a link to a real file) and mlflow in site-packages. */
function fakeEnv(home: string, {python = true, mlflow = true} = {}) {
  mkdirSync(path.join(home, 'bin'), {recursive: true})
  if (python) symlinkSync(process.execPath, path.join(home, 'bin', 'python'))
  const site = path.join(home, 'lib', 'python3.11', 'site-packages')
  mkdirSync(path.join(site, 'mlflow'), {recursive: true})
  if (mlflow) writeFileSync(path.join(site, 'mlflow', '__init__.py'), '')
}

const record = {manager: 'virtualenv', python: '3.11.7', mlflow: null, model: '/m'}

t.test('a cached env with a marker that is not a record, no interpreter, or no mlflow is rebuilt, saying why', async (t) => {
  const root = newRoot()
  let builds = 0
  const damaged: string[] = []
  const request = {
    kind: ENV_KIND,
    root,
    key: 'k',
    record,
    onDamaged: (reason: string) => damaged.push(reason),
    build: async (dir: string) => {
      builds++
      fakeEnv(dir)
    },
  }
  t.equal((await ensureBuilt(request)).built, true)
  t.equal((await ensureBuilt(request)).built, false, 'a sound env is reused')

  for (const [what, damage, reason] of [
    [
      'a marker that is an array',
      () => writeFileSync(path.join(root, 'k', MARKER), '[]'),
      /its marker .*\.mlserve-env\.json is not a valid record/,
    ],
    ['a marker that is not JSON', () => writeFileSync(path.join(root, 'k', MARKER), '{"key": '), /is not a valid record/],
    ['a marker without the fields', () => writeFileSync(path.join(root, 'k', MARKER), '{"key": "k"}'), /is not a valid record/],
    ['a removed interpreter', () => rmSync(path.join(root, 'k', 'bin', 'python')), /its interpreter .*k\/bin\/python is gone/],
    [
      'a removed mlflow',
      () => rmSync(path.join(root, 'k', 'lib', 'python3.11', 'site-packages', 'mlflow'), {recursive: true}),
      /mlflow is no longer installed in it/,
    ],
  ] as const) {
    damage()
    const before = builds
    // eslint-disable-next-line no-await-in-loop
    const entry = await ensureBuilt(request)
    t.equal(entry.built, true, `${what}: rebuilt`)
    t.equal(builds, before + 1)
    t.match(damaged.at(-1), reason, `${what}: the reason is told`)
    // eslint-disable-next-line no-await-in-loop
    t.equal(await envDamage(entry.dir), undefined)
  }

  t.same(readdirSync(root).sort(), ['k'], 'nothing else left')
})

t.test('envDamage: a dangling interpreter link (its base Python removed) is damage', async (t) => {
  const home = path.join(newRoot(), 'env')
  fakeEnv(home, {python: false})
  symlinkSync(path.join(home, 'no-such-python'), path.join(home, 'bin', 'python'))
  t.match(await envDamage(home), /its interpreter .*bin\/python is gone/)
})

t.test('diagnoseEnv: the log line for scorers that exit 127 because their env was removed while serving', async (t) => {
  const home = path.join(newRoot(), 'env')
  fakeEnv(home)
  t.equal(await diagnoseEnv({home}), undefined, 'a sound env: nothing to say')
  t.equal(await diagnoseEnv({}), undefined, 'the local manager: nothing mlserve owns')
  rmSync(home, {recursive: true})
  t.equal(
    await diagnoseEnv({home}),
    `the model's environment ${home} was removed or damaged while mlserve was serving (its interpreter ${home}/bin/python is gone): restarts of the scorer cannot succeed; restart mlserve, which builds the environment again`,
  )
})

t.test('a build past its timeout: BUILD_TIMEOUT, its signal aborted, nothing kept, the lock released', async (t) => {
  const root = newRoot()
  let aborted = false
  await t.rejects(
    ensureBuilt({
      kind: ENV_KIND,
      root,
      key: 'slow',
      record,
      buildTimeoutMs: 300,
      build: (dir, {signal}) =>
        new Promise((_resolve, reject) => {
          writeFileSync(path.join(dir, 'half'), 'x')
          signal.addEventListener('abort', () => {
            aborted = true
            reject(signal.reason)
          })
        }),
    }),
    {
      code: 'BUILD_TIMEOUT',
      exitCode: 71,
      message:
        /^Building the environment slow took longer than the build timeout \(0 s\): the installer was stopped and nothing was kept\. Installer logs: .*\/logs\.$/,
    },
  )
  t.ok(aborted, "the build's signal aborted (it kills the installer)")
  t.same(readdirSync(root), [], 'no temporary directory, no lock')
})

t.test('a raw file-system error of a build (a full disk) becomes CACHE_IO_FAILED naming the directory', async (t) => {
  const root = newRoot()
  const enospc = Object.assign(new Error(`ENOSPC: no space left on device, write`), {
    code: 'ENOSPC',
    syscall: 'write',
    path: path.join(root, 'logs', 'x.log'),
  })
  await t.rejects(ensureBuilt({kind: ENV_KIND, root, key: 'k', record, build: async () => Promise.reject(enospc)}), {
    code: 'CACHE_IO_FAILED',
    exitCode: 72,
    message: `Could not write to ${root}: no space left on the device [ENOSPC] (write ${path.join(root, 'logs', 'x.log')}).`,
    suggestions: [/Free space on the file system that holds .*env prune.*MLSERVE_ENV_ROOT/],
  })
  t.same(readdirSync(root), [])
  const other = Object.assign(new Error('ENOENT: no such file'), {code: 'ENOENT', syscall: 'open'})
  await t.rejects(
    ensureBuilt({kind: ENV_KIND, root, key: 'k', record, build: async () => Promise.reject(other)}),
    other,
    'other errors stay as they are',
  )
})

t.test('env prune disposes of what an env owns: a conda env loses its prefix, not just its record', async (t) => {
  const root = newRoot()
  const envs = path.join(newRoot(), 'conda-envs')
  const key = 'abc123'
  const prefix = path.join(envs, `mlserve-${key}`)
  const entry = await ensureBuilt({
    kind: ENV_KIND,
    root,
    key,
    record: {...record, manager: 'conda'},
    build: async () => {
      fakeEnv(prefix)
      return {prefix}
    },
  })
  t.equal(entry.record.prefix, prefix)
  const [listed] = await listEnvs(root)
  t.ok(listed && listed.sizeBytes > 0, "its size is the prefix's")
  t.equal(await removeEnv(root, {key}), true)
  t.notOk(existsSync(prefix), 'the conda env is gone from disk')
  t.notOk(existsSync(path.join(root, key)), 'and its record')

  // A forged record naming a directory that is not mlserve's own conda env is never deleted.
  const precious = path.join(envs, 'precious')
  fakeEnv(precious)
  mkdirSync(path.join(root, 'forged'))
  writeFileSync(path.join(root, 'forged', MARKER), JSON.stringify({...record, key: 'forged', created: '', prefix: precious}))
  t.equal(await removeEnv(root, {key: 'forged'}), true)
  t.ok(existsSync(precious), 'a prefix not named mlserve-<key> stays')
})

t.test('kinds: models and tools reuse the same cache with their own checks', async (t) => {
  const root = newRoot()
  interface Payload extends CacheRecord {
    readonly what: string
  }

  const kind: CacheKind<Payload> = {
    name: 'tool',
    parse: (value) => (value && typeof (value as Payload).what === 'string' ? (value as Payload) : undefined),
    verify: async (dir) => (existsSync(path.join(dir, 'bin', 'tool')) ? undefined : 'its executable is missing'),
  }
  const build = async (dir: string) => {
    mkdirSync(path.join(dir, 'bin'))
    writeFileSync(path.join(dir, 'bin', 'tool'), '')
  }

  const first = await ensureBuilt({kind, root, key: 'tool-1', record: {what: 'uv'}, build})
  t.equal(first.record.what, 'uv')
  rmSync(path.join(first.dir, 'bin', 'tool'))
  const reasons: string[] = []
  t.equal((await ensureBuilt({kind, root, key: 'tool-1', record: {what: 'uv'}, build, onDamaged: (why) => reasons.push(why)})).built, true)
  t.same(reasons, ['its executable is missing'])
  const envKind: CacheKind<EnvMetadata> = ENV_KIND
  t.equal(envKind.name, 'environment')
})
