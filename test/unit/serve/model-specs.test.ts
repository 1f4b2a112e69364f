// Which models one mlserve serves: -m NAME=URI, names taken from URIs, the --models file, and the usage errors (exit 2).
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {selectModels} from '../../../src/cli/serve-flags/multi-model.js'
import {checkModelNames, nameOfUri, parseModelArg, readModelsFile} from '../../../src/serve/model-specs.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-specs-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))
const file = (name: string, text: string) => {
  const where = path.join(scratch, name)
  writeFileSync(where, text)
  return where
}

t.test('a bare URI is named after the registered model, else the last segment of its path', async (t) => {
  t.equal(nameOfUri('models:/fraud@champion'), 'fraud')
  t.equal(nameOfUri('models:/fraud/3'), 'fraud')
  t.equal(nameOfUri('models:/fraud/Production'), 'fraud')
  t.equal(nameOfUri('./models/iris/'), 'iris')
  t.equal(nameOfUri('/abs/path/sum'), 'sum')
  t.equal(nameOfUri('file:///srv/models/churn'), 'churn')
  t.equal(nameOfUri('runs:/0123abc/model'), 'model')
  t.equal(nameOfUri('s3://bucket/models/ranker'), 'ranker')
  t.equal(nameOfUri('/'), undefined)
})

t.test('-m values: NAME=URI when the part before "=" is a name, else a bare URI', async (t) => {
  t.same(parseModelArg('iris=./models/iris'), {name: 'iris', uri: './models/iris', settings: {}})
  t.same(parseModelArg('a=models:/x@champion'), {name: 'a', uri: 'models:/x@champion', settings: {}})
  // ":" and "/" cannot be in a name: the "=" belongs to the URI.
  t.same(parseModelArg('s3://bucket/k=v/model'), {name: 'model', uri: 's3://bucket/k=v/model', settings: {}})
  t.same(parseModelArg('./dir/sum'), {name: 'sum', uri: './dir/sum', settings: {}})
  t.throws(() => parseModelArg('iris='), {code: 'INVALID_ARGUMENT', exitCode: 2, message: /URI after "=" is empty/})
  t.throws(() => parseModelArg('./dir/has space'), {code: 'INVALID_ARGUMENT', exitCode: 2, message: /"has space" is not a valid name/})
})

t.test('two models with one name are a usage error naming it', async (t) => {
  const specs = ['a=./x', './y/a'].map((arg) => parseModelArg(arg))
  t.throws(() => checkModelNames(specs), {code: 'INVALID_ARGUMENT', exitCode: 2, message: /Two models are named "a"/})
  t.equal(checkModelNames([parseModelArg('a=./x'), parseModelArg('b=./x')]).length, 2, 'one URI may be served under two names')
})

t.test('the --models file: YAML or JSON, per-model settings, defaults from the flags', async (t) => {
  const yaml = file(
    'models.yaml',
    '- name: iris\n  uri: ./iris\n  workers: 2\n  timeout: 5\n  batch: 64\n- uri: models:/fraud@champion\n  env_manager: local\n  install_mlflow: true\n',
  )
  t.same(await readModelsFile(yaml), [
    {name: 'iris', uri: './iris', settings: {workers: 2, timeoutSeconds: 5, batch: 64}},
    {name: 'fraud', uri: 'models:/fraud@champion', settings: {envManager: 'local', installMlflow: true}},
  ])
  const json = file('models.json', JSON.stringify([{name: 'a', uri: './a', batch: true}]))
  t.same(await readModelsFile(json), [{name: 'a', uri: './a', settings: {batch: true}}])
})

t.test('a bad --models file is a usage error (exit 2) that names the file and what is wrong', async (t) => {
  const bad = async (name: string, text: string, message: RegExp) =>
    t.rejects(readModelsFile(file(name, text)), {code: 'INVALID_ARGUMENT', exitCode: 2, message}, name)
  await bad('empty.yaml', '[]\n', /expected a non-empty list of models/)
  await bad('map.yaml', 'iris: ./iris\n', /expected a non-empty list/)
  await bad('syntax.yaml', '- name: [\n', /not valid YAML or JSON/)
  await bad('no-uri.yaml', '- name: a\n', /entry 1: uri is missing/)
  await bad('key.yaml', '- uri: ./a\n  wokers: 2\n', /entry 1: unknown key "wokers"/)
  await bad('workers.yaml', '- uri: ./a\n  workers: 0\n', /workers must be an integer of at least 1/)
  await bad('manager.yaml', '- uri: ./a\n  env_manager: pip\n', /env_manager must be one of local, virtualenv, uv, conda/)
  await bad('batch.yaml', '- uri: ./a\n  batch: lots\n', /batch must be true, false or the most rows/)
  await bad('name.yaml', '- uri: ./a\n  name: a/b\n', /name "a\/b" is not valid/)
  const bomb = `a: &a ["x","x","x","x","x","x","x","x","x","x"]\n${Array.from({length: 9}, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`).join('\n')}\n`
  await bad('bomb.yaml', bomb, /alias bomb/)
  await t.rejects(readModelsFile(path.join(scratch, 'missing.yaml')), {exitCode: 2, message: /missing\.yaml: no such file/})
  mkdirSync(path.join(scratch, 'dir.yaml'))
  await t.rejects(readModelsFile(path.join(scratch, 'dir.yaml')), {exitCode: 2, message: /is a directory/})
})

t.test('selection: one bare -m serves as ever; names, a file or several -m serve a named set', async (t) => {
  t.same(await selectModels({'model-uri': ['./m'], strict: false}), {kind: 'single', uri: './m'})
  t.same(await selectModels({'model-uri': ['s3://b/k=v'], strict: false}), {kind: 'single', uri: 's3://b/k=v'})
  t.match(await selectModels({'model-uri': ['a=./m'], strict: false}), {kind: 'multi', models: [{name: 'a'}]})
  t.match(await selectModels({'model-uri': ['./x/a', 'b=./y'], 'default-model': 'b', strict: true}), {
    kind: 'multi',
    models: [{name: 'a'}, {name: 'b'}],
    defaultModel: 'b',
    strict: true,
  })
  await t.rejects(selectModels({strict: false}), {exitCode: 2, message: /Missing required flag model-uri/})
  await t.rejects(selectModels({'model-uri': ['a=./x', 'b=./y'], 'default-model': 'c', strict: false}), {
    exitCode: 2,
    message: /--default-model c is not one of the models served \(a, b\)/,
  })
  await t.rejects(selectModels({'model-uri': ['./m'], 'default-model': 'm', strict: false}), {exitCode: 2, message: /needs several models/})
  await t.rejects(selectModels({'model-uri': ['./x/a', './y/a'], strict: false}), {exitCode: 2, message: /Two models are named "a"/})
})
