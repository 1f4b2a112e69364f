// Fault injection through `mlserve serve` / `prepare-env` on crafted models: a FIFO MLmodel, a warm-up
// example that links out of the model, installer options and relative wheels in build_dependencies,
// includes that leave the model, YAML alias bombs, and a TMPDIR too long for Unix sockets.
import {execFileSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {MLSERVE_BIN, runMlserve, spawnProc, startMlserve} from '../helpers/servers.js'
import {REPO_ROOT, fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-inputs-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))
const local = ['--env-manager', 'local', '--python', toolchainPython()]

/** A copy of a fixture model with some files rewritten (`null`: removed). */
function variant(base: string, name: string, files: Record<string, string | null> = {}): string {
  const dir = path.join(scratch, 'models', name)
  cpSync(fixtureModel(base), dir, {recursive: true})
  for (const [file, text] of Object.entries(files)) {
    if (text === null) unlinkSync(path.join(dir, file))
    else writeFileSync(path.join(dir, file), text)
  }

  return dir
}

const prepare = (model: string, root: string, cwd = scratch) =>
  runMlserve(['prepare-env', '-m', model, '--no-speedups'], {env: toolchainEnv({MLSERVE_ENV_ROOT: root}), cwd})

t.test('a FIFO as MLmodel: a clear error at once, not a hang deaf to SIGTERM', async (t) => {
  const dir = path.join(scratch, 'fifo-model')
  mkdirSync(dir, {recursive: true})
  execFileSync('mkfifo', [path.join(dir, 'MLmodel')])
  const proc = spawnProc(process.execPath, [MLSERVE_BIN, 'serve', '-m', dir, '-p', '0', ...local], {env: toolchainEnv()})
  t.teardown(() => proc.stop('SIGKILL'))
  const exit = await proc.exited
  t.equal(exit.code, 11)
  t.match(proc.stderr(), /Error: .*fifo-model\/MLmodel is a FIFO \(named pipe\): mlserve reads only regular files/)
  t.match(proc.stderr(), /code: MLMODEL_INVALID \(exit 11\)/)
})

t.test('a FIFO as conda.yaml (conda manager): refused at once', async (t) => {
  const model = variant('sum', 'fifo-conda', {'conda.yaml': null})
  execFileSync('mkfifo', [path.join(model, 'conda.yaml')])
  const env = toolchainEnv({
    MLSERVE_ENV_ROOT: path.join(scratch, 'roots', 'fifo-conda'),
    MLFLOW_CONDA_HOME: path.join(REPO_ROOT, 'test', 'conda-standin'),
    CONDA_ENVS_PATH: path.join(scratch, 'conda-envs'),
  })
  const result = await runMlserve(['prepare-env', '-m', model, '--env-manager', 'conda'], {env})
  t.equal(result.code, 17)
  t.match(result.stderr, /Error: .*fifo-conda\/conda\.yaml is a FIFO \(named pipe\): mlserve reads only regular files/)
})

t.test('a warm-up example linked to a file outside the model is reported and not posted', async (t) => {
  const model = variant('iris', 'passwd-example')
  unlinkSync(path.join(model, 'serving_input_example.json'))
  symlinkSync('/etc/passwd', path.join(model, 'serving_input_example.json'))
  const server = await startMlserve(['-m', model])
  t.teardown(() => server.stop())
  t.match(
    server.stderr(),
    /warn.*not warming up with serving_input_example\.json: it is outside the model directory \(\/etc\/passwd\); ready as soon as \/ping answers/,
  )
  t.notMatch(server.stderr(), /root:x:0:0/, 'the file was not posted (nor echoed in an error)')
  const res = await fetch(`${server.url}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: readFileSync(path.join(fixtureModel('iris'), 'serving_input_example.json')),
  })
  t.equal(await res.text(), '{"predictions": [0, 0, 0]}', 'the model serves')
})

t.test('a TMPDIR too long for Unix socket paths: mlserve falls back to a short directory and says so', async (t) => {
  const long = path.join(scratch, 'a'.repeat(60), 'b'.repeat(60))
  mkdirSync(long, {recursive: true})
  const server = await startMlserve(['-m', fixtureModel('sum')], {env: toolchainEnv({TMPDIR: long})})
  t.teardown(() => server.stop())
  t.match(
    server.stderr(),
    /warn.*the scorers' sockets are in \/tmp\/mlserve-\w+: .* is too long for Unix socket paths \(\d+ bytes; sockets under it would pass the 107-byte limit\)/,
  )
  const res = await fetch(`${server.url}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
  })
  t.equal(await res.text(), '{"predictions": [3]}')
})

/** A minimal pure-Python wheel `tiny` (module tiny, VALUE = 42), written into dir. */
function writeTinyWheel(dir: string): string {
  const name = 'tiny-0.1-py3-none-any.whl'
  const script = `
import base64, hashlib, sys, zipfile
files = {
    "tiny/__init__.py": "VALUE = 42\\n",
    "tiny-0.1.dist-info/METADATA": "Metadata-Version: 2.1\\nName: tiny\\nVersion: 0.1\\n",
    "tiny-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: mlserve-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
for path, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(text.encode())}")
record.append("tiny-0.1.dist-info/RECORD,,")
files["tiny-0.1.dist-info/RECORD"] = "\\n".join(record) + "\\n"
with zipfile.ZipFile(sys.argv[1], "w") as wheel:
    for path, text in files.items():
        wheel.writestr(path, text)
`
  execFileSync(toolchainPython(), ['-c', script, path.join(dir, name)])
  return name
}

t.test('build_dependencies: --target= is refused and nothing lands outside the env; ./x.whl resolves against the model', async (t) => {
  const planted = path.join(scratch, 'planted')
  for (const option of [`--target=${planted}`, `--prefix=${planted}`]) {
    const model = variant('sum', `target-${option.slice(2, 8)}`)
    const wheel = writeTinyWheel(model)
    writeFileSync(path.join(model, 'python_env.yaml'), `python: 3.11.7\nbuild_dependencies:\n- ${option}\n- ./${wheel}\ndependencies: []\n`)
    const root = path.join(scratch, 'roots', `target-${option.slice(2, 8)}`)
    // eslint-disable-next-line no-await-in-loop
    const result = await prepare(model, root)
    t.equal(result.code, 17, option)
    t.match(result.stderr, `Error: "${option}" in the build dependencies of python_env.yaml is an installer option, not a requirement`)
    t.notOk(existsSync(planted), `nothing was installed into ${planted}`)
    t.same(existsSync(root) ? readdirSync(root).filter((name) => name !== 'logs' && name !== '.tools') : [], [], 'no environment was made')
  }

  // A relative wheel is the model's: it resolves against the model directory, not the current one.
  const model = variant('sum', 'relative-wheel')
  const wheel = writeTinyWheel(model)
  writeFileSync(path.join(model, 'python_env.yaml'), `python: 3.11.7\nbuild_dependencies:\n- ./${wheel}\ndependencies:\n- -r requirements.txt\n`)
  const elsewhere = path.join(scratch, 'elsewhere')
  mkdirSync(elsewhere, {recursive: true})
  const result = await prepare(model, path.join(scratch, 'roots', 'wheel'), elsewhere)
  t.equal(result.code, 0, result.stderr)
  const imported = execFileSync(result.stdout.trim(), ['-c', 'import tiny; print(tiny.VALUE)'], {encoding: 'utf8'})
  t.equal(imported.trim(), '42', 'the wheel from the model directory is installed')
})

t.test('an include that leaves the model directory is refused before any install', async (t) => {
  const model = variant('sum', 'escaping-include', {'requirements.txt': 'mlflow==3.17.2\n-r ../../../../../../../../etc/hostname\n'})
  const result = await prepare(model, path.join(scratch, 'roots', 'escape'))
  t.equal(result.code, 17)
  t.match(
    result.stderr,
    /Error: "-r \.\.\/\.\.\/.*etc\/hostname" in .*requirements\.txt includes \/etc\/hostname, which is outside the model directory/,
  )
  t.notMatch(result.stderr, /creating the virtualenv/)
})

t.test('a YAML alias bomb in python_env.yaml is refused at once', async (t) => {
  const levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
  for (let level = 1; level < 9; level++) {
    const name = String.fromCharCode(97 + level)
    levels.push(`${name}: &${name} [${Array.from({length: 9}, () => `*${String.fromCharCode(96 + level)}`).join(', ')}]`)
  }

  const model = variant('sum', 'bomb', {'python_env.yaml': `python: 3.11.7\n${levels.join('\n')}\ndependencies: *i\n`})
  const result = await prepare(model, path.join(scratch, 'roots', 'bomb'))
  t.equal(result.code, 17)
  t.match(result.stderr, /python_env\.yaml: the document expands to more than \d+ values and characters/)
  t.ok(result.stderr.length < 4000, 'a short message')
})
