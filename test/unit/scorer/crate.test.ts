// The crate backend: its commands (pure), and its checks of R with the real Rscript or a stand-in script.
import {chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {MlserveError} from '../../../src/errors.js'
import {parseMlmodel} from '../../../src/model/mlmodel.js'
import {templatePath} from '../../../src/paths.js'
import type {SlotInfo} from '../../../src/scorer/backend.js'
import {crateBackend, crateScorerCommand, parseMissingPackages, requiredRPackages} from '../../../src/scorer/crate.js'

const CRATE_MLMODEL = 'flavors:\n  crate:\n    version: 0.1.0\n    model: crate.bin\n'
const mlmodel = parseMlmodel(CRATE_MLMODEL, '/models/r/MLmodel')
const root = mkdtempSync(path.join(tmpdir(), 'mlserve-crate-unit-'))
t.teardown(() => rmSync(root, {recursive: true, force: true}))

/** A directory whose only command is an `Rscript` that runs `script` (a /bin/sh body). */
function fakeR(name: string, script: string): string {
  const bin = path.join(root, name)
  mkdirSync(bin, {recursive: true})
  writeFileSync(path.join(bin, 'Rscript'), `#!/bin/sh\n${script}\n`)
  chmodSync(path.join(bin, 'Rscript'), 0o755)
  return bin
}

const slot: SlotInfo = {index: 0, start: 0, socketPath: '/run/mlserve/s0.sock', freePort: async () => 5123}

async function rejection(promise: Promise<unknown>): Promise<MlserveError> {
  try {
    await promise
  } catch (error) {
    if (error instanceof MlserveError) return error
    throw error
  }

  throw new Error('expected an MlserveError')
}

t.test('commands: our scorer on the slot socket, mlflow_rfunc_serve on a port, the path never in R code', async (t) => {
  t.same(crateScorerCommand({rscript: '/usr/bin/Rscript', modelDir: "/m/it's", rScorer: 'mlserve', endpoint: 'unix:/s.sock'}), {
    file: '/usr/bin/Rscript',
    args: [templatePath('r', 'scorer.R'), "/m/it's", 'unix:/s.sock'],
    env: {},
    server: 'R httpuv',
  })
  t.same(crateScorerCommand({rscript: '/usr/bin/Rscript', modelDir: "/m/it's", rScorer: 'mlflow', endpoint: 5123}), {
    file: '/usr/bin/Rscript',
    args: ['-e', "mlflow::mlflow_rfunc_serve(Sys.getenv('MLSERVE_R_MODEL_DIR'), port = 5123, host = '127.0.0.1')"],
    env: {MLSERVE_R_MODEL_DIR: "/m/it's"},
    server: 'mlflow_rfunc_serve',
  })
  t.same(requiredRPackages('mlserve'), ['httpuv', 'jsonlite'])
  t.same(requiredRPackages('mlflow'), ['httpuv', 'jsonlite', 'mlflow'])
  t.same(parseMissingPackages('missing:  \n'), [])
  t.same(parseMissingPackages('Loading...\nmissing: httpuv mlflow \n'), ['httpuv', 'mlflow'])
  t.throws(() => parseMissingPackages('nothing'))
})

t.test('R_NOT_FOUND when PATH has no Rscript, naming the Debian packages', async (t) => {
  const error = await rejection(crateBackend({modelDir: '/m', mlmodel, env: {PATH: path.join(root, 'nowhere')}, rScorer: 'mlserve'}))
  t.equal(error.code, 'R_NOT_FOUND')
  t.equal(error.exitCode, 27)
  t.match(error.suggestions.join('\n'), 'apt-get install -y --no-install-recommends r-base-core r-cran-httpuv r-cran-jsonlite')
})

t.test('R_NOT_FOUND when Rscript does not run', async (t) => {
  const bin = fakeR('broken', 'echo "R is broken" >&2; exit 3')
  const error = await rejection(crateBackend({modelDir: '/m', mlmodel, env: {PATH: bin}, rScorer: 'mlserve'}))
  t.equal(error.code, 'R_NOT_FOUND')
  t.match(error.message, 'R is broken')
})

t.test('R_PACKAGE_MISSING names the packages and their Debian packages', async (t) => {
  const bin = fakeR('nohttpuv', 'echo "missing: httpuv "')
  const error = await rejection(crateBackend({modelDir: '/m', mlmodel, env: {PATH: bin}, rScorer: 'mlserve'}))
  t.equal(error.code, 'R_PACKAGE_MISSING')
  t.equal(error.exitCode, 28)
  t.match(error.message, 'httpuv')
  t.match(error.suggestions.join('\n'), 'apt-get install -y --no-install-recommends r-cran-httpuv')
})

t.test('the real R: --r-scorer mlflow needs the R mlflow package, which Debian does not ship', async (t) => {
  const error = await rejection(crateBackend({modelDir: '/m', mlmodel, env: process.env, rScorer: 'mlflow'}))
  t.equal(error.code, 'R_PACKAGE_MISSING')
  t.match(error.message, /: mlflow\.$/)
  t.match(error.suggestions.join('\n'), '--r-scorer mlserve')
})

t.test('the real R: mlserve scorer backend', async (t) => {
  const backend = await crateBackend({modelDir: 'rel/model', mlmodel, env: process.env, rScorer: 'mlserve'})
  t.equal(backend.kind, 'crate')
  t.equal(backend.server, 'R httpuv')
  t.equal(backend.readyPath, '/ping')
  t.same(backend.rewrites, {'/health': '/ping'})
  const {version} = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {version: string}
  t.same(backend.ownRoutes?.['/version'], {status: 200, contentType: 'application/json', body: version}, "mlserve's version")
  const launch = await backend.launch(slot)
  t.same(launch.endpoint, {kind: 'unix', socketPath: '/run/mlserve/s0.sock'})
  t.same(launch.command.args, [templatePath('r', 'scorer.R'), path.resolve('rel/model'), 'unix:/run/mlserve/s0.sock'])
})

t.test('/version: an explicit version, else MLmodel mlflow_version', async (t) => {
  const bin = fakeR('allthere', 'echo "missing: "')
  const saved = parseMlmodel(`mlflow_version: 2.9.2\n${CRATE_MLMODEL}`, '/m/MLmodel')
  const fromModel = await crateBackend({modelDir: '/m', mlmodel: saved, env: {PATH: bin}, rScorer: 'mlserve'})
  t.equal(fromModel.ownRoutes?.['/version']?.body, '2.9.2')
  const explicit = await crateBackend({modelDir: '/m', mlmodel: saved, env: {PATH: bin}, rScorer: 'mlserve', mlflowVersion: '3.1.0'})
  t.equal(explicit.ownRoutes?.['/version']?.body, '3.1.0')
})

t.test('--r-scorer mlflow: a TCP port, and the Python mlflow CLI it shells out to', async (t) => {
  const bin = fakeR('withmlflow', 'echo "missing: "')
  const error = await rejection(crateBackend({modelDir: '/m', mlmodel, env: {PATH: bin}, rScorer: 'mlflow'}))
  t.equal(error.code, 'MLFLOW_NOT_FOUND')

  const backend = await crateBackend({modelDir: '/m', mlmodel, env: {PATH: bin, MLFLOW_BIN: '/opt/mlflow'}, rScorer: 'mlflow'})
  t.equal(backend.server, 'mlflow_rfunc_serve')
  const launch = await backend.launch(slot)
  t.same(launch.endpoint, {kind: 'tcp', port: 5123})
  t.equal(launch.command.file, path.join(bin, 'Rscript'))
  t.same(launch.command.env, {MLSERVE_R_MODEL_DIR: '/m'})
})
