// The model's own OpenAPI document (GET /openapi.model.json) for every kind of fixture model, `mlserve serve`
// in front of the real scorer (also under --static-prefix): it passes an OpenAPI 3.1 validator, says what the signature says,
// and its example gets a 200 from /invocations; mlflow's own /openapi.json stays the scorer's.
import {execFileSync} from 'node:child_process'
import {cpSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {Validator} from '@seriousme/openapi-schema-validator'
import t, {type Test} from 'tap'

import {eventually, startMlserve} from '../helpers/servers.js'
import {REPO_ROOT, fixtureModel, toolchainPython} from '../helpers/toolchain.js'

const work = mkdtempSync(path.join(tmpdir(), 'mlserve-openapi-'))
t.teardown(() => rmSync(work, {recursive: true, force: true}))
execFileSync(toolchainPython(), [path.join(REPO_ROOT, 'test/fixtures/openapi_models.py'), work], {stdio: 'pipe'})
execFileSync('Rscript', [path.join(REPO_ROOT, 'test', 'fixtures', 'save_crate.R'), work], {stdio: 'pipe'})

interface OpenApiDocument {
  openapi: string
  info: {description: string; title: string}
  servers: Array<{url: string}>
  paths: Record<
    string,
    {
      post?: {
        requestBody: {content: Record<string, {example?: unknown; schema: {oneOf: Array<{title: string; properties: Record<string, unknown>}>}}>}
      }
    }
  >
  components: {schemas: Record<string, {properties?: Record<string, {default?: unknown; type?: string}>}>}
}

async function documentOf(url: string): Promise<{status: number; document: OpenApiDocument}> {
  const res = await fetch(`${url}/openapi.model.json`)
  return {status: res.status, document: (await res.json()) as OpenApiDocument}
}

async function checkServed(t: Test, model: string, args: string[] = []) {
  const server = await startMlserve(['-m', model, ...args])
  t.teardown(() => server.stop())
  const {status, document} = await documentOf(server.url)
  t.equal(status, 200)
  const result = await new Validator().validate(document as unknown as Parameters<Validator['validate']>[0])
  t.ok(result.valid, `valid OpenAPI ${document.openapi}: ${JSON.stringify(result.errors ?? '')}`)
  t.equal(document.openapi, '3.1.0')
  const json = document.paths['/invocations']!.post!.requestBody.content['application/json']!
  t.ok(document.paths['/invocations']!.post!.requestBody.content['text/csv'], 'CSV is described')
  t.same(
    json.schema.oneOf.map((form) => form.title),
    ['dataframe_split', 'dataframe_records', 'instances', 'inputs'],
    'each accepted JSON form',
  )
  if (json.example !== undefined) {
    const res = await fetch(`${server.url}/invocations`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify(json.example),
    })
    t.equal(res.status, 200, `the example gets a 200: ${await res.text()}`)
  }

  return {server, document, json}
}

const formOf = (json: {schema: {oneOf: Array<{title: string; properties: Record<string, unknown>}>}}, title: string) =>
  json.schema.oneOf.find((form) => form.title === title)!.properties[title] as Record<string, unknown>

t.test('iris: columns with their MLflow types and the serving example', async (t) => {
  const {document, json} = await checkServed(t, fixtureModel('iris'))
  t.equal(document.info.title, 'iris', 'a local model is named by its directory only: no host path on the public port')
  t.ok(json.example, 'the serving input example is the example')
  const records = formOf(json, 'dataframe_records') as {items: {properties: Record<string, {type: string; 'x-mlflow-type': string}>}}
  t.same(records.items.properties.sepal_length, {type: 'number', format: 'double', 'x-mlflow-type': 'double'})
  t.match(document.info.description, /derived from the model signature/)
  t.match(document.components.schemas.ErrorEnvelope, {properties: {error_code: {type: 'string'}}})
})

t.test("sum, a model with a signature and no example; mlflow's /openapi.json is still the scorer's", async (t) => {
  const {server, json} = await checkServed(t, fixtureModel('sum'))
  t.equal(json.example, undefined)
  const split = formOf(json, 'dataframe_split') as {properties: {columns: {items: {enum: string[]}}}}
  t.same(split.properties.columns.items.enum, ['a', 'b'])
  const theirs = (await (await fetch(`${server.url}/openapi.json`)).json()) as {info: {title: string}; paths: Record<string, unknown>}
  t.ok(theirs.paths['/invocations'], "FastAPI's own document, untouched")
})

t.test('a tensor model: shape and dtype', async (t) => {
  const {json} = await checkServed(t, path.join(work, 'tensor'))
  const inputs = formOf(json, 'inputs')
  t.same(inputs, {type: 'array', items: {type: 'array', items: {type: 'number', 'x-numpy-dtype': 'float64'}, minItems: 3, maxItems: 3}})
  t.match(formOf(json, 'dataframe_split'), {description: /Not for a tensor model/})
})

t.test('a model with params: the param schema, defaults included', async (t) => {
  const {document, json} = await checkServed(t, path.join(work, 'params'))
  t.match(document.components.schemas.Params!.properties, {scale: {type: 'number', default: 1}, label: {type: 'string', default: 'x'}})
  t.same(json.example, {dataframe_split: {columns: ['a'], data: [[1], [2]]}, params: {scale: 2}})
})

t.test('a model without a signature gets a free-form body and says so; under a prefix', async (t) => {
  const {document, json} = await checkServed(t, fixtureModel('echo'), ['--static-prefix', '/p'])
  t.match(document.info.description, /no signature: the request body is free-form/)
  t.match(formOf(json, 'inputs'), {description: /no input signature/})
  t.same(document.servers, [{url: '/p'}])
})

t.test('an R crate model', async (t) => {
  const {document} = await checkServed(t, path.join(work, 'double'))
  t.match(document.info.description, /flavor crate/)
})

t.test('after a reload (SIGHUP on a local directory whose content changed) the document describes the new model', async (t) => {
  const dir = path.join(work, 'moving')
  cpSync(fixtureModel('sum'), dir, {recursive: true})
  const server = await startMlserve(['-m', dir, '--no-access-log'])
  t.teardown(() => server.stop())
  const before = (await documentOf(server.url)).document as OpenApiDocument & {'x-mlserve-model': {generation: number; signature: unknown}}
  t.match(before.info.description, /derived from the model signature/)
  t.same(before['x-mlserve-model'].signature, {
    inputs: [
      {name: 'a', type: 'long', required: true},
      {name: 'b', type: 'long', required: true},
    ],
    outputs: [{name: null, type: 'long', required: true}],
    params: [{name: 'scale', type: 'long', default: 1}],
  })

  rmSync(dir, {recursive: true})
  cpSync(fixtureModel('echo'), dir, {recursive: true})
  const from = server.stderr().length
  server.child.kill('SIGHUP')
  t.ok(await eventually(() => /serving .*moving generation 2/.test(server.stderr().slice(from)), 300_000), 'the reload switched to generation 2')
  const after = (await documentOf(server.url)).document as typeof before
  t.match(after.info.description, /no signature: the request body is free-form/, 'the new model has no signature')
  t.equal(after['x-mlserve-model'].generation, 2)
  t.same(after['x-mlserve-model'].signature, {inputs: null, outputs: null, params: []})
})
