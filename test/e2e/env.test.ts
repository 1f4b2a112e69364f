// The model's own environment, built for real from PyPI: virtualenv with uv and with venv + pip, the
// cache (hits, concurrent builds, interrupted builds, failed builds), Python versions, --install-mlflow.
import {execFileSync} from 'node:child_process'
import {cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {fetch} from 'undici'

import {MLSERVE_BIN, runMlserve, spawnProc, startMlserve} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

// Every test below has a cache root and model copies of its own: two run at a time (most of a build is waiting
// on the installer and the disk).
t.jobs = 2

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-env-'))
// Real environments are hundreds of MB: leave none behind.
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))

/** A copy of a fixture model with some of its files rewritten. */
function variant(base: string, name: string, files: Record<string, string> = {}): string {
  const dir = path.join(scratch, 'models', name)
  cpSync(fixtureModel(base), dir, {recursive: true})
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text)
  return dir
}

const pythonEnv = (python: string, requirements = '-r requirements.txt') =>
  `python: ${python}\nbuild_dependencies:\n- pip\ndependencies:\n- ${requirements}\n`

/** Env for mlserve with its own cache root; uv comes from the toolchain's bin on PATH. */
function envWith(root: string, extra: Record<string, string> = {}) {
  return toolchainEnv({MLSERVE_ENV_ROOT: root, ...extra})
}

const newRoot = (name: string) => path.join(scratch, 'roots', name)
const prepare = (model: string, root: string, extra: Record<string, string> = {}, args: string[] = []) =>
  runMlserve(['prepare-env', '-m', model, ...args], {env: envWith(root, extra)})

/** What is left in a cache root besides complete envs: temporary dirs, locks, unmarked dirs. */
function debris(root: string): string[] {
  if (!existsSync(root)) return []
  return readdirSync(root).filter((name) => name !== 'logs' && !existsSync(path.join(root, name, '.mlserve-env.json')))
}

async function predictVersions(url: string) {
  const res = await fetch(`${url}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: '{"dataframe_split": {"columns": ["x"], "data": [[1]]}}',
  })
  return res.text()
}

t.test('virtualenv with uv: a model pinning another scikit-learn gets its own env, cached', async (t) => {
  const root = newRoot('uv')
  const model = fixtureModel('versions')
  const server = await startMlserve(['-m', model, '--env-manager', 'virtualenv'], {env: envWith(root)})
  t.teardown(() => server.stop())
  t.equal(
    await predictVersions(server.url),
    '{"predictions": {"sklearn": "1.7.2", "python": "3.11.7"}}',
    'served from its own env, not the toolchain (1.9.1)',
  )
  t.match(server.stderr(), /building environment \w+ in /)
  t.match(server.stderr(), /creating the virtualenv \(uv\)/)
  t.match(server.stderr(), /installing 5 requirements \(-r requirements\.txt\) \(\d/)
  t.match(server.stderr(), /installing uvloop>=0\.19, httptools>=0\.6 \(\d/, "uvicorn's speedups, after the model's requirements")
  t.match(server.stderr(), /verifying the environment \(\d/)

  const again = await prepare(model, root)
  t.equal(again.code, 0)
  t.match(again.stderr, /using cached environment/)
  t.notMatch(again.stderr, /building environment/)
  t.match(again.stdout.trim(), new RegExp(`^${root}/\\w+/bin/python$`), 'prints the interpreter')
  const imported = execFileSync(again.stdout.trim(), ['-c', 'import uvloop, httptools; print("ok")'], {encoding: 'utf8'})
  t.equal(imported.trim(), 'ok', 'uvicorn finds uvloop and httptools in the env (its "auto" picks them)')

  const listed = await runMlserve(['env', 'list', '--json'], {env: envWith(root)})
  const {envs} = JSON.parse(listed.stdout)
  t.equal(envs.length, 1)
  t.match(envs[0], {manager: 'virtualenv', python: '3.11.7', model, inUseBy: [server.child.pid]})

  const pruned = await runMlserve(['env', 'prune', '--older-than', '0m'], {env: envWith(root)})
  t.equal(pruned.code, 0)
  t.match(pruned.stdout, /0 removed, 1 kept \(some in use\)/, 'an env in use is never pruned')

  const plain = await prepare(model, root, {}, ['--no-speedups'])
  t.equal(plain.code, 0)
  t.match(plain.stderr, /building environment/, '--no-speedups is another environment')
  t.notMatch(plain.stderr, /installing uvloop/)
})

t.test('virtualenv without uv: python -m venv and pip', async (t) => {
  const root = newRoot('pip')
  const result = await prepare(fixtureModel('sum'), root, {MLSERVE_UV: 'none'})
  t.equal(result.code, 0, result.stderr)
  t.match(result.stderr, /creating the virtualenv \(venv \+ pip\)/)
  const python = result.stdout.trim()
  const server = await startMlserve(['-m', fixtureModel('sum'), '--env-manager', 'virtualenv'], {env: envWith(root, {MLSERVE_UV: 'none'})})
  t.teardown(() => server.stop())
  t.match(server.stderr(), /using cached environment/)
  t.match(server.stderr(), `cached ${path.dirname(path.dirname(python))}: python 3.11.7`, 'the scorer runs in the env')
})

t.test('without uv on PATH, mlserve installs a pinned uv into its cache once and builds with it', async (t) => {
  const root = newRoot('bootstrap')
  const pathWithoutUv = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => !existsSync(path.join(dir, 'uv')))
    .join(path.delimiter)
  const env = {...(process.env as Record<string, string>), PATH: pathWithoutUv, MLSERVE_ENV_ROOT: root, PYTHONHASHSEED: '0'}
  const first = await runMlserve(['prepare-env', '-m', fixtureModel('sum')], {env})
  t.equal(first.code, 0, first.stderr)
  t.match(first.stderr, /installing uv 0\.13\.9 from PyPI into mlserve's cache \(once\) \(/)
  t.match(first.stderr, /creating the virtualenv \(uv\)/)
  t.ok(existsSync(path.join(root, '.tools', 'uv-0.13.9', 'bin', 'uv')))
  const requirements = readFileSync(path.join(fixtureModel('sum'), 'requirements.txt'), 'utf8')
  const other = variant('sum', 'bootstrap-second', {'requirements.txt': `${requirements.trimEnd()}\nsix==1.16.0\n`})
  const second = await runMlserve(['prepare-env', '-m', other], {env})
  t.equal(second.code, 0, second.stderr)
  t.notMatch(second.stderr, /installing uv \d/, 'installed once')
  t.match(second.stderr, /creating the virtualenv \(uv\)/)
})

t.test('concurrent launches build once; the others wait and reuse', async (t) => {
  const root = newRoot('concurrent')
  const model = variant('sum', 'concurrent')
  const [a, b, c] = await Promise.all([prepare(model, root), prepare(model, root), prepare(model, root)])
  for (const r of [a, b, c]) t.equal(r.code, 0, r.stderr)
  const outputs = [a, b, c].map((r) => r.stderr)
  t.equal(outputs.filter((o) => /building environment/.test(o)).length, 1, 'exactly one build')
  t.equal(outputs.filter((o) => /waiting for another mlserve \(pid \d+\)/.test(o)).length, 2)
  t.equal(new Set([a, b, c].map((r) => r.stdout.trim())).size, 1, 'all use the same env')
  t.same(debris(root), [])
})

t.test('an interrupted build never becomes a cache hit; the next start builds cleanly', async (t) => {
  const root = newRoot('interrupted')
  const model = variant('sum', 'interrupted')
  for (const signal of ['SIGINT', 'SIGKILL'] as const) {
    const proc = spawnProc(process.execPath, [MLSERVE_BIN, 'prepare-env', '-m', model], {env: envWith(root)})
    // eslint-disable-next-line no-await-in-loop
    await proc.waitForOutput(/verifying the environment\.\.\./)
    proc.child.kill(signal)
    // eslint-disable-next-line no-await-in-loop
    const exit = await proc.exited
    if (signal === 'SIGINT') {
      t.equal(exit.code, 130, 'SIGINT: exit 130')
      t.match(proc.stderr(), /Interrupted while preparing the environment; nothing half-built was kept/)
      t.same(debris(root), [], 'SIGINT: nothing left behind')
    } else {
      t.not(debris(root).length, 0, 'SIGKILL leaves a temporary directory and a lock...')
    }

    // eslint-disable-next-line no-await-in-loop
    const listed = await runMlserve(['env', 'list', '--json'], {env: envWith(root)})
    t.same(JSON.parse(listed.stdout).envs, [], `${signal}: no env is listed`)
  }

  const clean = await prepare(model, root)
  t.equal(clean.code, 0, clean.stderr)
  t.match(clean.stderr, /building environment/, '...which the next start does not reuse')
  t.same(debris(root), [], 'and cleans up')
})

t.test('a failing requirement: a clear error naming the log, nothing cached', async (t) => {
  const root = newRoot('failing')
  const model = variant('sum', 'failing', {'requirements.txt': 'does-not-exist-dep==abc\n'})
  const result = await prepare(model, root)
  t.equal(result.code, 24)
  t.match(result.stderr, /Installing the model's requirements failed \(exit code \d+\)\. The full installer log is (\S+\.log)/)
  const log = /The full installer log is (\S+\.log)/.exec(result.stderr)![1]!
  t.match(readFileSync(log, 'utf8'), /does-not-exist-dep/, 'the log holds the installer output')
  t.same(debris(root), [])
  t.same(JSON.parse((await runMlserve(['env', 'list', '--json'], {env: envWith(root)})).stdout).envs, [])
})

t.test('Python versions: an unavailable one is a clear error; another patch of X.Y warns', async (t) => {
  const root = newRoot('python')
  const missing = await prepare(variant('sum', 'py399', {'python_env.yaml': pythonEnv('3.99.1')}), root, {UV_PYTHON_DOWNLOADS: 'never'})
  t.equal(missing.code, 23)
  t.match(missing.stderr, /No Python 3\.99\.1 interpreter was found for the model's environment\./)
  t.match(missing.stderr, /hint: Install Python 3\.99\.1: `uv python install 3\.99\.1` or `pyenv install 3\.99\.1`/)
  t.same(debris(root), [])

  const otherPatch = await prepare(variant('sum', 'py3111', {'python_env.yaml': pythonEnv('3.11.1')}), root)
  t.equal(otherPatch.code, 0, otherPatch.stderr)
  t.match(otherPatch.stderr, /warning: The model asks for Python 3\.11\.1; using Python 3\.11\.7/)
})

t.test('--install-mlflow: a model whose requirements lack mlflow', async (t) => {
  const root = newRoot('install-mlflow')
  const without = await prepare(fixtureModel('nomlflow'), root)
  t.equal(without.code, 21)
  t.match(without.stderr, /The model's environment has no mlflow/)
  t.match(without.stderr, /hint: Add --install-mlflow/)
  t.same(debris(root), [])

  const server = await startMlserve(['-m', fixtureModel('nomlflow'), '--env-manager', 'uv', '--install-mlflow'], {env: envWith(root)})
  t.teardown(() => server.stop())
  t.match(server.stderr(), /--install-mlflow: installing mlflow==3\.17\.2 \(the version that saved the model\)/)
  const res = await fetch(`${server.url}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
  })
  t.equal(await res.text(), '{"predictions": [3]}')
})

t.test('the uv manager needs uv', async (t) => {
  const result = await prepare(fixtureModel('sum'), newRoot('no-uv'), {MLSERVE_UV: 'none'}, ['--env-manager', 'uv'])
  t.equal(result.code, 25)
  t.match(result.stderr, /The 'uv' env manager needs uv, which was not found/)
})

t.test('prepare-env refuses the local manager, as mlflow does', async (t) => {
  const result = await prepare(fixtureModel('sum'), newRoot('local'), {}, ['--env-manager', 'local'])
  t.equal(result.code, 2)
  t.match(result.stderr, 'Prepare env should not be called with local env manager!')
})
