// The CLI surface: mlflow's flags and environment variables, and each bad input's message and exit code.
import {mkdtempSync, mkdirSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {execFileSync} from 'node:child_process'

import t from 'tap'

import {runMlserve} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-cli-'))

function modelDir(name: string, mlmodel: string): string {
  const dir = path.join(scratch, name)
  mkdirSync(dir, {recursive: true})
  writeFileSync(path.join(dir, 'MLmodel'), mlmodel)
  return dir
}

const serve = (...args: string[]) => runMlserve(['serve', ...args])
const local = ['--env-manager', 'local', '--python', toolchainPython()]

t.test('--help explains every flag; -h is --host, as in mlflow', async (t) => {
  const help = await runMlserve(['serve', '--help'])
  t.equal(help.code, 0)
  for (const flag of [
    '--model-uri',
    '--port',
    '--host',
    '--timeout',
    '--workers',
    '--env-manager',
    '--no-conda',
    '--install-mlflow',
    '--enable-mlserver',
    '--python',
    '--grace-period',
    '--max-body-size',
    '--max-concurrency',
    '--max-queue',
    '--header-timeout',
    '--body-timeout',
    '--timeout-grace',
    '--liveness-interval',
    '--warmup',
    '--access-log',
    '--log-format',
    '--r-scorer',
  ]) {
    t.match(help.stdout, flag, `help mentions ${flag}`)
  }

  for (const variable of ['MLFLOW_PORT', 'MLFLOW_HOST', 'MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT', 'MLFLOW_MODELS_WORKERS', 'MLSERVE_PYTHON']) {
    t.match(help.stdout, variable, `help names ${variable}`)
  }

  const dashH = await serve('-m', 'x', '-h')
  t.equal(dashH.code, 2)
  t.match(dashH.stderr, /--host expects a value/)
})

t.test('usage errors exit 2 before any work', async (t) => {
  const badManager = await serve('-m', '/nonexistent', '--env-manager', 'abc')
  t.equal(badManager.code, 2)
  t.match(badManager.stderr, /Expected --env-manager=abc to be one of: local, virtualenv, uv/)
  t.notMatch(badManager.stderr, /resolve model/, 'nothing was resolved')

  const badPort = await runMlserve(['serve', '-m', '/nonexistent'], {env: toolchainEnv({MLFLOW_PORT: 'abc'})})
  t.equal(badPort.code, 2)
  t.match(badPort.stderr, /Expected an integer but received: abc/)

  const noModel = await serve()
  t.equal(noModel.code, 2)
  t.match(noModel.stderr, /Missing required flag model-uri/)

  const badWorkers = await serve('-m', '/nonexistent', '-w', '0')
  t.equal(badWorkers.code, 2)
})

t.test('model errors: each its own message and exit code', async (t) => {
  const missing = await serve('-m', path.join(scratch, 'missing'), ...local)
  t.equal(missing.code, 10)
  t.match(missing.stderr, /Model path does not exist: .*missing/)

  const empty = path.join(scratch, 'empty')
  mkdirSync(empty)
  const noMlmodel = await serve('-m', empty, ...local)
  t.equal(noMlmodel.code, 10)
  t.match(noMlmodel.stderr, `Could not find an "MLmodel" configuration file at "${empty}"`)

  const invalid = await serve('-m', modelDir('invalid', 'flavors: [unclosed\n'), ...local)
  t.equal(invalid.code, 11)
  t.match(invalid.stderr, /Could not parse .*invalid\/MLmodel/)

  const sklearnOnly = await serve('-m', modelDir('sklearn-only', 'flavors:\n  sklearn: {pickled_model: model.pkl}\n'), ...local)
  t.equal(sklearnOnly.code, 12)
  t.match(sklearnOnly.stderr, 'Error: No suitable flavor backend was found for the model.')

  const malformed = await serve('-m', 'models:/a/b/c', ...local)
  t.equal(malformed.code, 13)
  t.match(malformed.stderr, "Error: Not a proper models:/ URI: models:/a/b/c. Models URIs must be of the form 'models:/name/suffix'")

  const crate = await serve('-m', modelDir('crate', 'flavors:\n  crate: {version: 0.1.0, model: crate.bin}\n'), ...local, '-p', '0')
  t.equal(crate.code, 40, "a crate model without crate.bin: SCORER_START_FAILED, not the R scorer's own exit code")
  t.match(crate.stderr, /mlserve R scorer: cannot load the crate model in[\s\S]*crate\.bin/)
})

t.test('environment errors: a clear message, a distinct exit code, no scorer started', async (t) => {
  const sum = fixtureModel('sum')
  const mlserver = await serve('-m', sum, ...local, '--enable-mlserver')
  t.equal(mlserver.code, 22, 'SCORER_DEPENDENCY_MISSING: the local interpreter has no mlserver')
  t.match(mlserver.stderr, /mlserver/)

  const noPython = await serve('-m', sum, '--env-manager', 'local', '--python', '/nonexistent/python3')
  t.equal(noPython.code, 20)
  t.match(noPython.stderr, /Could not run the Python interpreter '\/nonexistent\/python3': it was not found/)

  const bare = path.join(scratch, 'bare-venv')
  execFileSync('python3', ['-m', 'venv', '--without-pip', bare])
  const noMlflow = await serve('-m', sum, '--env-manager', 'local', '--python', path.join(bare, 'bin', 'python'))
  t.equal(noMlflow.code, 21)
  t.match(noMlflow.stderr, /mlflow is not installed in the Python interpreter/)
  t.match(noMlflow.stderr, /--install-mlflow/)

  const viaEnv = await runMlserve(['serve', '-m', sum, '--env-manager', 'local'], {env: toolchainEnv({MLSERVE_PYTHON: '/nonexistent/py'})})
  t.equal(viaEnv.code, 20, 'MLSERVE_PYTHON is read')
  t.match(viaEnv.stderr, /'\/nonexistent\/py'/)

  const noConda = await serve('-m', sum, '--no-conda', '--env-manager', 'conda', '--python', '/nonexistent/python3')
  t.equal(noConda.code, 20, '--no-conda means local, whatever --env-manager says')

  const noEnvKey = modelDir('no-env-key', 'flavors:\n  python_function: {loader_module: mlflow.pyfunc.model}\n')
  const condaWithoutEnv = await serve('-m', noEnvKey, '--env-manager', 'conda', '--python', '/nonexistent/python3')
  t.match(condaWithoutEnv.stderr, 'Conda environment is not specified in config `env`. Using local environment.')
  t.equal(condaWithoutEnv.code, 20, 'then the local manager runs (and finds no such python)')

  for (const result of [mlserver, noPython, noMlflow]) t.notMatch(result.stderr, /start scorer/)
})

t.test('env list and env prune print an mlserve error whole, with its code and hint', async (t) => {
  const notADir = path.join(scratch, 'not-a-directory')
  writeFileSync(notADir, '')
  for (const command of [
    ['env', 'list'],
    ['env', 'prune', '--older-than', '1d'],
  ]) {
    // eslint-disable-next-line no-await-in-loop
    const result = await runMlserve([...command, '--root', notADir])
    t.equal(result.code, 2, `${command.join(' ')} exits with INVALID_ARGUMENT's code`)
    t.match(result.stderr, `Error: The environment cache ${notADir} is not a directory mlserve can read (ENOTDIR).`)
    t.match(result.stderr, /\n {2}code: INVALID_ARGUMENT \(exit 2\)\n {2}hint: Point --root \(or MLSERVE_ENV_ROOT\)/)
    t.equal(result.stdout, '', 'nothing listed')
  }
})

t.test('a mistyped command suggests the closest one (exit 2)', async (t) => {
  const serv = await runMlserve(['serv', '-m', 'x'])
  t.equal(serv.code, 2)
  t.match(serv.stderr, /command serv not found/)
  t.match(serv.stderr, /Did you mean: mlserve serve\?/)
  const lst = await runMlserve(['env', 'lst'])
  t.equal(lst.code, 2)
  t.match(lst.stderr, /Did you mean: mlserve env list\?/)
  const nothing = await runMlserve(['qqqqqqqq'])
  t.equal(nothing.code, 2)
  t.match(nothing.stderr, /mlserve --help lists the commands/)
})
