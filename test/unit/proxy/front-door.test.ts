// The front door's pure parts: the prefix, the token file's lines, the keyring, the model's OpenAPI forms.
import t from 'tap'

import {Keyring, parseTokens, presentedToken, tokenId} from '../../../src/proxy/auth.js'
import {normalizePrefix, stripPrefix} from '../../../src/proxy/front-door.js'
import {buildOpenApi} from '../../../src/proxy/openapi.js'
import type {IncomingMessage} from 'node:http'

t.test('prefixes: normalized, and requests inside or outside', async (t) => {
  t.equal(normalizePrefix(undefined), '')
  t.equal(normalizePrefix('/'), '')
  t.equal(normalizePrefix('/models/iris/'), '/models/iris')
  for (const bad of ['p', '/a/../b', '/./a', '/p?x', '/p#x', '/p q', '']) t.throws(() => normalizePrefix(bad), {code: 'INVALID_ARGUMENT'}, bad)
  t.equal(stripPrefix('/p', '/p'), '/')
  t.equal(stripPrefix('/p/invocations', '/p'), '/invocations')
  t.equal(stripPrefix('/p?x=1', '/p'), '/?x=1')
  t.equal(stripPrefix('/px/ping', '/p'), undefined)
  t.equal(stripPrefix('/ping', '/p'), undefined)
})

t.test('token files: one per line, comments and blanks skipped', async (t) => {
  t.same(parseTokens('# team\n\n  a-key  \r\nb-key\n#c\n'), ['a-key', 'b-key'])
})

t.test('the keyring accepts its keys only, and swaps them', async (t) => {
  const keys = new Keyring(['one', 'two'])
  t.ok(keys.accepts('one'))
  t.ok(keys.accepts('two'))
  t.notOk(keys.accepts('on'))
  t.notOk(keys.accepts('one '))
  t.notOk(keys.accepts(undefined))
  t.notOk(keys.accepts(''))
  keys.replace(['three'])
  t.notOk(keys.accepts('one'))
  t.ok(keys.accepts('three'))
  t.match(tokenId('one'), /^[0-9a-f]{8}$/)
  t.same(keys.check('three'), {accepted: true, id: tokenId('three')}, 'the access log id is the same short hash')
  const req = (headers: Record<string, string>) => ({headers}) as unknown as IncomingMessage
  t.equal(presentedToken(req({authorization: 'Bearer abc'})), 'abc')
  t.equal(presentedToken(req({authorization: 'bearer  abc '})), 'abc')
  t.equal(presentedToken(req({authorization: 'Basic abc'})), undefined)
  t.equal(presentedToken(req({'x-api-key': 'k'})), 'k')
})

t.test('OpenAPI: a model without a signature says so; optional columns are not required', async (t) => {
  const free = buildOpenApi({title: 'm', flavor: 'pyfunc'}) as {info: {description: string}}
  t.match(free.info.description, /no signature/)
  const doc = buildOpenApi({
    title: 'm',
    flavor: 'pyfunc',
    inputs: {
      kind: 'columns',
      columns: [
        {name: 'a', type: {kind: 'scalar', type: 'long'}, required: true},
        {name: 'b', type: {kind: 'scalar', type: 'string'}, required: false},
      ],
    },
  }) as {
    paths: Record<
      string,
      {
        post: {
          requestBody: {content: {'application/json': {schema: {oneOf: Array<{properties: Record<string, {items?: {required?: string[]}}>}>}}}}
        }
      }
    >
  }
  const records = doc.paths['/invocations']!.post.requestBody.content['application/json'].schema.oneOf[1]!.properties.dataframe_records!
  t.same(records.items!.required, ['a'])
})
