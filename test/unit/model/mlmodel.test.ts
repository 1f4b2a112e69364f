// MLmodel files as mlserve reads them: flavors and the scorer kind they pick, and a FIFO, a device or an alias bomb refused.
import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import t from 'tap'

import {type MlserveError} from '../../../src/errors.js'
import {parseMlmodel, readMlmodel} from '../../../src/model/mlmodel.js'
import {pickFlavor} from '../../../src/scorer/flavor.js'
import {BOMB, MLMODEL, model} from '../../helpers/model-dir.js'

const PYFUNC = `
flavors:
  python_function:
    env: {conda: conda.yaml, virtualenv: python_env.yaml}
    loader_module: mlflow.sklearn
    python_version: 3.11.9
  sklearn: {pickled_model: model.pkl}
mlflow_version: 3.8.0
saved_input_example_info: {artifact_path: input_example.json, serving_input_path: serving_input_example.json, type: dataframe}
`

t.test('reads the python_function flavor and what it says about the environment', async (t) => {
  const model = parseMlmodel(PYFUNC, '/m/MLmodel')
  t.equal(model.pyfunc?.loaderModule, 'mlflow.sklearn')
  t.equal(model.pyfunc?.pythonVersion, '3.11.9')
  t.same(model.pyfunc?.env, {conda: 'conda.yaml', virtualenv: 'python_env.yaml'})
  t.equal(model.mlflowVersion, '3.8.0')
  t.equal(model.servingInputPath, 'serving_input_example.json')
  t.equal(pickFlavor(model), 'pyfunc')
})

t.test('keeps an old-style env string (mlflow < 2.0)', async (t) => {
  const model = parseMlmodel('flavors: {python_function: {loader_module: m, env: conda.yaml}}', 'MLmodel')
  t.equal(model.pyfunc?.env, 'conda.yaml')
})

t.test('python_function wins over crate; crate alone is the R backend', async (t) => {
  t.equal(pickFlavor(parseMlmodel('flavors: {crate: {model: crate.bin}, python_function: {loader_module: m}}', 'f')), 'pyfunc')
  t.equal(pickFlavor(parseMlmodel('flavors: {crate: {version: 0.1.0, model: crate.bin}}', 'f')), 'crate')
})

t.test("no servable flavor is mlflow's error, with the flavors found", async (t) => {
  const model = parseMlmodel('flavors: {sklearn: {pickled_model: model.pkl}}', 'f')
  t.throws(() => pickFlavor(model), {
    code: 'NO_SUITABLE_FLAVOR',
    message: 'No suitable flavor backend was found for the model.',
    exitCode: 12,
  })
  try {
    pickFlavor(model)
  } catch (error) {
    t.match((error as MlserveError).suggestions.join(' '), /\[sklearn\]/)
  }
})

t.test('broken MLmodel files are MLMODEL_INVALID, naming the file', async (t) => {
  t.throws(() => parseMlmodel('flavors: [unclosed', '/x/MLmodel'), {code: 'MLMODEL_INVALID', message: /^Could not parse \/x\/MLmodel/})
  t.throws(() => parseMlmodel('- a\n- b\n', '/x/MLmodel'), {code: 'MLMODEL_INVALID', message: /not a YAML mapping/})
  t.throws(() => parseMlmodel('artifact_path: model\n', '/x/MLmodel'), {code: 'MLMODEL_INVALID', message: /no `flavors`/})
  t.throws(() => parseMlmodel('flavors: {python_function: {env: conda.yaml}}', '/x/MLmodel'), {
    code: 'MLMODEL_INVALID',
    message: /no `loader_module`/,
  })
})

// Each read below must finish at once: a FIFO nobody writes to would block a reader forever.
t.setTimeout(60_000)

t.test('MLmodel: a FIFO, a device and an alias bomb are MLMODEL_INVALID', async (t) => {
  const fifo = model(t, {}, {fifos: ['MLmodel']})
  await t.rejects(readMlmodel(fifo), {code: 'MLMODEL_INVALID', exitCode: 11, message: /MLmodel is a FIFO/})
  const device = model(t, {}, {links: {MLmodel: '/dev/zero'}})
  await t.rejects(readMlmodel(device), {code: 'MLMODEL_INVALID', message: /MLmodel is a device/})
  t.throws(() => parseMlmodel(`${MLMODEL}${BOMB.join('\n')}\n`, '/m/MLmodel'), {
    code: 'MLMODEL_INVALID',
    message: /^Could not parse \/m\/MLmodel: the document expands to more than \d+ values/,
  })
  t.equal((await readMlmodel(model(t, {MLmodel: MLMODEL}))).pyfunc?.loaderModule, 'mlflow.pyfunc.model', 'a regular MLmodel reads as before')
})

t.test('a regular MLmodel in a subdirectory layout still reads', async (t) => {
  const dir = t.testdir({})
  mkdirSync(path.join(dir, 'm'))
  writeFileSync(path.join(dir, 'm', 'MLmodel'), MLMODEL)
  t.equal((await readMlmodel(path.join(dir, 'm'))).pyfunc?.loaderModule, 'mlflow.pyfunc.model')
})
