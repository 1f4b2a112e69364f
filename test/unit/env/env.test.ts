// The pure and file-system parts of environment management, without building a real environment.
import {existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {ensureBuilt, type CacheKind} from '../../../src/cache/build-once.js'
import {acquireLock} from '../../../src/cache/lock.js'
import {ENV_KIND, markInUse, inUseBy, type EnvMetadata} from '../../../src/env/cache.js'
import {condaExecutable} from '../../../src/env/conda.js'
import {pickInterpreter} from '../../../src/env/interpreter.js'
import {parseDuration, parseSize, selectForPrune, type EnvEntry} from '../../../src/env/inventory.js'
import {requireServerPackages} from '../../../src/env/env.js'
import {managedEnvKey, mlflowToInstall} from '../../../src/env/managed.js'
import {SCORER_SPEEDUPS, requirementName, serverKeyPart, serverModules} from '../../../src/env/server-packages.js'
import {createCommand, installCommand} from '../../../src/env/virtualenv.js'

t.test('interpreter choice: exact patch first, else the newest of the same X.Y, never another X.Y', async (t) => {
  const probed = [
    {path: '/a/python3.11', version: '3.11.4'},
    {path: '/b/python3.11', version: '3.11.7'},
    {path: '/c/python3.12', version: '3.12.1'},
  ]
  t.same(pickInterpreter('3.11.4', probed), {path: '/a/python3.11', version: '3.11.4', exact: true})
  t.same(pickInterpreter('3.11.2', probed), {path: '/b/python3.11', version: '3.11.7', exact: false}, 'same X.Y: flagged inexact')
  t.same(pickInterpreter('3.11', probed), {path: '/b/python3.11', version: '3.11.7', exact: true}, 'an X.Y request is met by any patch')
  t.equal(pickInterpreter('3.9.13', probed), undefined)
  t.equal(pickInterpreter('3.1', [{path: '/x', version: '3.10.2'}]), undefined, "3.1 does not match 3.10 (mlflow's prefix bug)")
})

t.test('the cache key changes with everything that changes the env, and only that', async (t) => {
  const base = {
    manager: 'virtualenv',
    python: '3.11.7',
    buildDependencies: ['pip==23.3'],
    requirements: [
      {line: 'mlflow==3.17.2', isConstraint: false},
      {line: 'numpy<3', isConstraint: true},
    ],
    mlflow: null,
  }
  const key = managedEnvKey(base)
  t.match(key, /^[0-9a-f]{24}$/)
  t.equal(managedEnvKey({...base, requirements: [...base.requirements].reverse()}), key, 'requirement order does not matter')
  for (const [what, changed] of [
    ['python', {python: '3.11.8'}],
    ['manager', {manager: 'uv'}],
    ['build dependencies', {buildDependencies: ['pip==24.0']}],
    ['a requirement', {requirements: [{line: 'mlflow==3.17.1', isConstraint: false}, base.requirements[1]!]}],
    ['constraint-ness', {requirements: [base.requirements[0]!, {line: 'numpy<3', isConstraint: false}]}],
    ['--install-mlflow', {mlflow: 'mlflow==3.17.2'}],
  ] as const) {
    t.not(managedEnvKey({...base, ...changed}), key, `${what} changes the key`)
  }
})

t.test('server packages (--enable-mlserver) make another env; without them the key is what it always was', async (t) => {
  const base = {
    manager: 'uv',
    python: '3.11.7',
    buildDependencies: [],
    requirements: [{line: 'mlflow==3.17.2', isConstraint: false}],
    mlflow: null,
  }
  const mlserver = ['mlserver>=1.2.0,!=1.3.1,<2.0.0', 'mlserver-mlflow>=1.2.0,!=1.3.1,<2.0.0']
  const without = managedEnvKey(base)
  const withServer = managedEnvKey({...base, serverPackages: mlserver})
  t.not(withServer, without, 'an env with mlserver is not the env without it')
  t.equal(managedEnvKey({...base, serverPackages: []}), without, 'none is the same as not given')
  t.equal(managedEnvKey({...base, serverPackages: [...mlserver].reverse()}), withServer, 'their order does not matter')
  t.not(managedEnvKey({...base, serverPackages: ['mlserver==1.7.1', 'mlserver-mlflow==1.7.1']}), withServer, 'other versions: another env')
  t.same(serverKeyPart([]), {}, 'nothing is added to the keys of envs without server packages')
  t.same(serverKeyPart(['b', 'a']), {server: ['a', 'b']})
})

t.test('server packages: names, the modules a built env must import, the local interpreter check', async (t) => {
  t.equal(requirementName('mlserver>=1.2.0,!=1.3.1,<2.0.0'), 'mlserver')
  t.equal(requirementName('MLServer_MLflow >= 1.2'), 'mlserver-mlflow')
  t.equal(requirementName('uvloop<0.22'), 'uvloop')
  t.same(serverModules(['mlserver>=1.2.0', 'mlserver-mlflow>=1.2.0', 'uvloop<0.22']), ['mlserver.cli', 'mlserver_mlflow', 'uvloop'])
  t.same(serverModules([...SCORER_SPEEDUPS]), ['uvloop', 'httptools'], "uvicorn's speedups are verified by importing them")
  t.same(serverModules(['mlserver-mlflow']), [], 'only mlserver itself asks for the MLServer imports')
  t.same(serverModules([]), [])

  const packages = ['mlserver>=1.2.0,!=1.3.1,<2.0.0', 'mlserver-mlflow>=1.2.0,!=1.3.1,<2.0.0']
  t.doesNotThrow(() => requireServerPackages({executable: '/py', mlserver: true}, packages))
  t.doesNotThrow(() => requireServerPackages({executable: '/py', mlserver: false}, []), 'nothing asked, nothing checked')
  t.throws(() => requireServerPackages({executable: '/usr/bin/python3', mlserver: false}, packages), {
    code: 'SCORER_DEPENDENCY_MISSING',
    exitCode: 22,
    message: /mlserver and mlserver-mlflow.*not installed in \/usr\/bin\/python3/,
    suggestions: [
      "Install them there (`/usr/bin/python3 -m pip install 'mlserver>=1.2.0,!=1.3.1,<2.0.0' 'mlserver-mlflow>=1.2.0,!=1.3.1,<2.0.0'`),",
      /--env-manager virtualenv/,
    ],
  })
})

t.test('--install-mlflow picks the pinned version, else the saving version, else the newest', async (t) => {
  const pinned = [{line: 'mlflow[extras]==2.9.1', isConstraint: false}]
  t.same(mlflowToInstall(pinned, {mlflowVersion: '3.0.0'}), {spec: 'mlflow==2.9.1', why: "pinned by the model's requirements"})
  t.same(
    mlflowToInstall([{line: 'mlflow==2.9.1', isConstraint: true}], {mlflowVersion: '3.0.0'}).spec,
    'mlflow==3.0.0',
    'a constraint is not a pin',
  )
  t.same(mlflowToInstall([], {mlflowVersion: '3.0.0'}), {spec: 'mlflow==3.0.0', why: 'the version that saved the model'})
  t.same(mlflowToInstall([], {mlflowVersion: '3.1.0.dev0'}).spec, 'mlflow', 'a dev version is not on PyPI')
  t.same(mlflowToInstall([{line: 'mlflow>=2', isConstraint: false}], {}), {spec: 'mlflow', why: 'the newest on the package index'})
})

t.test('installer commands: uv, or venv and pip without byte-compiling', async (t) => {
  const plan = {python: '/py/bin/python3', buildDependencies: [], dependencies: [], requirementCount: 0, extraRequirements: [], modelDir: '/m'}
  t.same(createCommand({...plan, uv: '/bin/uv'}, '/e'), ['/bin/uv', 'venv', '/e', '--python', '/py/bin/python3', '--relocatable', '--no-config'])
  t.same(installCommand({...plan, uv: '/bin/uv'}, '/e'), ['/bin/uv', 'pip', 'install', '--python', '/e/bin/python'])
  t.same(createCommand(plan, '/e'), ['/py/bin/python3', '-m', 'venv', '/e'])
  t.same(installCommand(plan, '/e'), ['/e/bin/python', '-m', 'pip', 'install', '--no-compile', '--disable-pip-version-check', '--no-input'])
})

t.test('conda executables are found where mlflow looks', async (t) => {
  t.equal(condaExecutable('conda', {MLFLOW_CONDA_HOME: '/opt/conda', CONDA_EXE: '/x/bin/conda'}), '/opt/conda/bin/conda')
  t.equal(condaExecutable('mamba', {CONDA_EXE: '/x/bin/conda'}), '/x/bin/mamba')
  t.equal(condaExecutable('conda', {PATH: ''}), 'conda')
})

t.test('durations and sizes for env prune', async (t) => {
  t.equal(parseDuration('30d'), 30 * 86_400_000)
  t.equal(parseDuration('90m'), 5_400_000)
  t.equal(parseSize('10GB'), 10 * 1024 ** 3)
  t.equal(parseSize('500 MiB'), 500 * 1024 ** 2)
  t.equal(parseSize('2048'), 2048)
  t.throws(() => parseDuration('soon'), {code: 'INVALID_ARGUMENT'})
  t.throws(() => parseSize('big'), {code: 'INVALID_ARGUMENT'})
})

t.test('prune selection: by age, then least recently used down to a size, never in use', async (t) => {
  const day = 86_400_000
  const now = Date.parse('2026-11-25T00:00:00Z')
  const entry = (key: string, daysAgo: number, size: number, inUse = false): EnvEntry => ({
    key,
    manager: 'virtualenv',
    python: '3.11.7',
    mlflow: null,
    model: `/m/${key}`,
    created: '',
    dir: `/r/${key}`,
    sizeBytes: size,
    lastUsed: new Date(now - daysAgo * day).toISOString(),
    inUseBy: inUse ? [1] : [],
  })
  const envs = [entry('new', 1, 100), entry('mid', 10, 100), entry('old', 40, 100), entry('old-busy', 50, 100, true)]
  const keys = (selected: EnvEntry[]) => selected.map((e) => e.key).sort()
  t.same(keys(selectForPrune(envs, {olderThanMs: 30 * day, now})), ['old'], 'old-busy is in use')
  t.same(keys(selectForPrune(envs, {maxSizeBytes: 250, now})), ['mid', 'old'], 'least recently used first, until it fits')
  t.same(keys(selectForPrune(envs, {olderThanMs: 5 * day, maxSizeBytes: 1000, now})), ['mid', 'old'])
  t.same(keys(selectForPrune(envs, {maxSizeBytes: 0, now})), ['mid', 'new', 'old'], 'the in-use env stays even over the limit')
})

t.test('the cache: one build for concurrent requests, a marker, nothing left of a failed build', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'mlserve-cache-'))
  let builds = 0
  // The kind without the env check: these payloads are not real environments.
  const kind: CacheKind<EnvMetadata> = {...ENV_KIND, verify: undefined}
  const request = {
    kind,
    root,
    key: 'k1',
    record: {manager: 'virtualenv', python: '3.11.7', mlflow: null, model: '/m'},
    build: async (dir: string) => {
      builds++
      writeFileSync(path.join(dir, 'payload'), 'x')
      await new Promise((resolve) => setTimeout(resolve, 200))
      return {python: '3.11.7'}
    },
  }
  const results = await Promise.all([ensureBuilt(request), ensureBuilt(request), ensureBuilt(request)])
  t.equal(builds, 1)
  t.same(results.map((r) => r.built).sort(), [false, false, true])
  t.ok(existsSync(path.join(root, 'k1', 'payload')))
  t.ok(existsSync(path.join(root, 'k1', '.mlserve-env.json')))
  t.same(readdirSync(root).sort(), ['k1'], 'no lock or temporary directory left')

  await t.rejects(ensureBuilt({...request, key: 'k2', build: async () => Promise.reject(new Error('pip failed'))}), /pip failed/)
  t.same(readdirSync(root).sort(), ['k1'], 'a failed build leaves nothing')

  // A dead builder's leftovers (an unmarked directory, a temporary directory, a lock) are never reused.
  mkdirSync(path.join(root, 'k3'))
  mkdirSync(path.join(root, '.tmp-k3-999999-dead'))
  mkdirSync(path.join(root, 'k3.lock'))
  writeFileSync(path.join(root, 'k3.lock', 'owner'), `999999999 ${(await import('node:os')).hostname()}\n`)
  const rebuilt = await ensureBuilt({...request, key: 'k3'})
  t.equal(rebuilt.built, true)
  t.same(readdirSync(root).sort(), ['k1', 'k3'])
})

t.test('a lock held by a live process is waited for', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'mlserve-lock-'))
  const first = await acquireLock(root, 'k')
  let waitedFor: number | undefined
  const second = acquireLock(root, 'k', {onWait: (wait) => (waitedFor = wait.owner.pid)})
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(waitedFor, process.pid, 'a lock this process holds is waited for, not taken over')
  await first.release()
  await (await second).release()
  const abort = new AbortController()
  const held = await acquireLock(root, 'k')
  const waiting = acquireLock(root, 'k', {signal: abort.signal})
  abort.abort()
  await t.rejects(waiting)
  await held.release()
})

t.test('in-use marks', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-inuse-'))
  writeFileSync(path.join(dir, '.mlserve-env.json'), '{}')
  const release = await markInUse(dir)
  t.same(await inUseBy(dir), [process.pid])
  await release()
  t.same(await inUseBy(dir), [])
})
