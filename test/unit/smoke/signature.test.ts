// The smoke test's schema checker: MLflow's column types and tensor specs (as mlflow 3.17.2's
// Schema.to_json() writes them), the sample rows built from an input schema, and MLflow's JSON with NaN.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {checkPredictions, isOfDtype} from '../../../src/smoke/conform.js'
import {parseScorerJson} from '../../../src/smoke/json.js'
import {missingColumnBody, sampleBody} from '../../../src/smoke/sample.js'
import {parseSchema, readSignature} from '../../../src/smoke/signature.js'

// Written by mlflow 3.17.2: Schema([...]).to_json().
const COLUMNS = parseSchema(
  '[{"type": "double", "name": "x", "required": true}, {"type": "array", "items": {"type": "string"}, "name": "tags", "required": true}, {"type": "object", "properties": {"a": {"type": "long", "required": true}, "b": {"type": "string", "required": false}}, "name": "o", "required": true}, {"type": "map", "values": {"type": "double"}, "name": "m", "required": true}, {"type": "any", "name": "any", "required": false}, {"type": "datetime", "name": "t", "required": true}, {"type": "binary", "name": "bin", "required": true}, {"type": "boolean", "name": "flag", "required": true}, {"type": "integer", "name": "i", "required": true}]',
)
const TENSOR = parseSchema('[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]')
const NAMED_TENSORS = parseSchema(
  '[{"name": "ids", "type": "tensor", "tensor-spec": {"dtype": "int32", "shape": [-1]}}, {"name": "scores", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]',
)
const ONE_LONG = parseSchema('[{"type": "long", "required": true}]')

const GOOD_ROW = {
  x: 1.5,
  tags: ['a', 'b'],
  o: {a: 3},
  m: {k: 0.5},
  any: null,
  t: '2024-05-01T10:00:00',
  bin: 'YQ==',
  flag: false,
  i: 7,
}

t.test('a single unnamed column: a list of values of its type', async (t) => {
  t.same(checkPredictions(ONE_LONG, [0, 1, 2]), [])
  t.same(checkPredictions(ONE_LONG, []), [], 'no rows: nothing violates')
  t.same(checkPredictions(ONE_LONG, [0, 1.5, 'x']), [
    'prediction 1 (column 0): expected long, got 1.5',
    'prediction 2 (column 0): expected long, got "x"',
  ])
  t.same(checkPredictions(ONE_LONG, [null]), ['prediction 0 (column 0): expected long, got null'], 'required means no null')
  t.same(checkPredictions(ONE_LONG, 3), [], 'a bare scalar')
})

t.test('named columns: records with every MLflow type', async (t) => {
  t.same(checkPredictions(COLUMNS, [GOOD_ROW, {...GOOD_ROW, any: {nested: [1]}, o: {a: 1, b: 'x'}}]), [])
  t.same(checkPredictions(COLUMNS, [{...GOOD_ROW, x: 'nope'}]), ['prediction 0, column \'x\': expected double, got "nope"'])
  t.same(checkPredictions(COLUMNS, [{...GOOD_ROW, tags: ['a', 2]}]), ["prediction 0, column 'tags'[1]: expected string, got 2"])
  t.same(checkPredictions(COLUMNS, [{...GOOD_ROW, o: {b: 'x', c: 1}}]), [
    "prediction 0, column 'o': missing property 'a'",
    "prediction 0, column 'o': unexpected property 'c'",
  ])
  t.same(checkPredictions(COLUMNS, [{...GOOD_ROW, m: {k: 'high'}}]), ["prediction 0, column 'm'['k']: expected double, got \"high\""])
  t.same(checkPredictions(COLUMNS, [{...GOOD_ROW, t: 'not a date'}]), ['prediction 0, column \'t\': expected datetime, got "not a date"'])
  t.same(checkPredictions(COLUMNS, [{...GOOD_ROW, flag: 1}]), ["prediction 0, column 'flag': expected boolean, got 1"])
  t.same(
    checkPredictions(COLUMNS, [{...GOOD_ROW, i: 2 ** 40}]),
    [`prediction 0, column 'i': expected integer, got ${2 ** 40}`],
    'integer is 32-bit',
  )
  const {x: _, ...withoutX} = GOOD_ROW
  t.same(checkPredictions(COLUMNS, [{...withoutX, extra: 1}]), [
    "prediction 0: missing column 'x'",
    "prediction 0: unexpected column 'extra' (the schema has 'x', 'tags', 'o', 'm', 'any', 't', 'bin', 'flag', 'i')",
  ])
  const {any: __, ...withoutOptional} = GOOD_ROW
  t.same(checkPredictions(COLUMNS, [withoutOptional]), [], 'an optional column may be missing')
})

t.test('named columns as a dict of lists, and as positional rows', async (t) => {
  const two = parseSchema('[{"type": "long", "name": "label", "required": true}, {"type": "double", "name": "score", "required": true}]')
  t.same(checkPredictions(two, {label: [0, 1], score: [0.9, 0.8]}), [])
  t.same(checkPredictions(two, {label: [0, 'b'], score: [0.9, 0.8]}), ['column \'label\', row 1: expected long, got "b"'])
  t.same(
    checkPredictions(two, [
      [0, 0.9],
      [1, 0.5],
    ]),
    [],
  )
  t.same(checkPredictions(two, [[0, 0.9, 3]]), ['prediction 0: expected 2 columns, got 3: [0,0.9,3]'])
  t.same(checkPredictions(two, [5]), ['prediction 0: expected a row of 2 columns, got 5'])
  t.same(checkPredictions(two, 'x'), ['expected 2 columns, got "x"'])
})

t.test('NaN and infinities are doubles (MLflow writes them as bare tokens)', async (t) => {
  const doubles = parseSchema('[{"type": "double", "required": true}]')
  const predictions = (parseScorerJson('{"predictions": [NaN, 1.5, Infinity, -Infinity]}') as {predictions: unknown}).predictions
  t.same(checkPredictions(doubles, predictions), [])
  t.equal(checkPredictions(ONE_LONG, predictions).length, 4, 'but not longs')
  t.same(parseScorerJson('{"s": "NaN is text here", "n": NaN}'), {s: 'NaN is text here', n: Number.NaN}, 'tokens inside strings are kept')
  t.throws(() => parseScorerJson('{"a": nope}'), SyntaxError)
})

t.test('tensor specs: shape and dtype', async (t) => {
  t.same(
    checkPredictions(TENSOR, [
      [1, 2, 3.5],
      [4, 5, 6],
    ]),
    [],
  )
  t.same(checkPredictions(TENSOR, [[1, 2]]), ['the predictions[0]: dimension 1 has size 2, the shape [-1,3] says 3'])
  t.same(checkPredictions(TENSOR, [1, 2, 3]), [
    'the predictions[0]: expected 1 more dimension(s) (shape [-1,3]), got 1',
    'the predictions[1]: expected 1 more dimension(s) (shape [-1,3]), got 2',
    'the predictions[2]: expected 1 more dimension(s) (shape [-1,3]), got 3',
  ])
  t.same(checkPredictions(TENSOR, [[[1], 2, 3]]), ['the predictions[0][0]: expected a float64 element (shape [-1,3]), got an array'])
  t.same(checkPredictions(TENSOR, [[1, 'a', 3]]), ['the predictions[0][1]: expected float64, got "a"'])

  t.same(
    checkPredictions(NAMED_TENSORS, {
      ids: [1, 2],
      scores: [
        [0.5, 0.5],
        [1, 0],
      ],
    }),
    [],
  )
  t.same(checkPredictions(NAMED_TENSORS, {ids: [1.5], scores: [[0.5, 0.5]], other: []}), [
    "tensor 'ids'[0]: expected int32, got 1.5",
    "unexpected tensor 'other'",
  ])
  t.same(checkPredictions(NAMED_TENSORS, {ids: [1]}), ["missing tensor 'scores'"])
  t.same(checkPredictions(NAMED_TENSORS, [1]), ['expected an object of 2 named tensors, got [1]'])
})

t.test('dtypes', async (t) => {
  t.ok(isOfDtype('uint8', 255))
  t.notOk(isOfDtype('uint8', 256))
  t.notOk(isOfDtype('int8', -129))
  t.notOk(isOfDtype('int64', 0.5))
  t.ok(isOfDtype('float32', Number.NaN))
  t.ok(isOfDtype('bool', false))
  t.notOk(isOfDtype('bool', 0))
  t.ok(isOfDtype('str', 'x'))
  t.ok(isOfDtype('object', {any: 'thing'}))
})

t.test('only the first violations are listed', async (t) => {
  t.equal(
    checkPredictions(
      ONE_LONG,
      Array.from({length: 50}, () => 'x'),
    ).length,
    5,
  )
})

t.test('sample bodies from an input schema', async (t) => {
  const sample = JSON.parse(sampleBody(COLUMNS)!) as {dataframe_split: {columns: string[]; data: unknown[][]}}
  t.same(sample.dataframe_split.columns, ['x', 'tags', 'o', 'm', 'any', 't', 'bin', 'flag', 'i'])
  t.same(sample.dataframe_split.data, [[0.5, ['a'], {a: 1, b: 'a'}, {key: 0.5}, 'a', '2024-01-01T00:00:00', 'YQ==', true, 1]])
  t.same(
    checkPredictions(COLUMNS, [
      Object.fromEntries(sample.dataframe_split.columns.map((name, index) => [name, sample.dataframe_split.data[0]![index]])),
    ]),
    [],
    'the sample conforms to its own schema',
  )
  t.same(JSON.parse(sampleBody(TENSOR)!), {inputs: [[0.5, 0.5, 0.5]]})
  t.same(JSON.parse(sampleBody(NAMED_TENSORS)!), {inputs: {ids: [1], scores: [[0.5, 0.5]]}})
  t.same(JSON.parse(sampleBody(ONE_LONG)!), {inputs: [1]})
  t.equal(sampleBody(parseSchema('[]')), undefined)

  const missing = missingColumnBody(COLUMNS)!
  t.equal(missing.column, 'x')
  t.notOk((JSON.parse(missing.body) as {dataframe_split: {columns: string[]}}).dataframe_split.columns.includes('x'))
  t.equal(missingColumnBody(TENSOR), undefined, 'tensors: no column to leave out')
  t.equal(missingColumnBody(ONE_LONG), undefined, 'unnamed columns: no column to leave out')
})

t.test('reads the signature from an MLmodel file; one it cannot parse is absent, with a warning', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-signature-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const file = path.join(dir, 'MLmodel')
  writeFileSync(
    file,
    `flavors: {python_function: {loader_module: m}}\nsignature:\n  inputs: '[{"type": "long", "name": "a", "required": true}]'\n  outputs: '[{"type": "long", "required": true}]'\n  params: null\n`,
  )
  const warnings: string[] = []
  const signature = await readSignature(file, (message) => warnings.push(message))
  t.same(signature, {
    inputs: {kind: 'columns', columns: [{name: 'a', type: {kind: 'scalar', type: 'long'}, required: true}]},
    outputs: {kind: 'columns', columns: [{name: undefined, type: {kind: 'scalar', type: 'long'}, required: true}]},
  })
  t.same(warnings, [])

  writeFileSync(file, `flavors: {python_function: {loader_module: m}}\nsignature:\n  inputs: '[{"type": "tensor"}]'\n`)
  t.same(await readSignature(file, (message) => warnings.push(message)), {inputs: undefined, outputs: undefined})
  t.match(warnings, [/could not parse the signature's inputs/])
  writeFileSync(file, 'flavors: {python_function: {loader_module: m}}\n')
  t.equal(await readSignature(file, () => {}), undefined, 'no signature')
})
