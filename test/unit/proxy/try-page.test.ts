// The page to try the model, assembled: its script and style inlined with the hashes its Content-Security-Policy
// allows, nothing of a model in it; and the signature rows it shows, as MLflow spells the types.
import {createHash} from 'node:crypto'

import t from 'tap'

import {paramRows, schemaRows} from '../../../src/proxy/signature-rows.js'
import {assemblePage, readPage} from '../../../src/proxy/try-page.js'

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`

t.test('the script and the style are inlined with exactly the hashes the policy names', async (t) => {
  const page = assemblePage('<html><style>\n  /*STYLE*/\n</style><script>\n  /*SCRIPT*/\n</script></html>', 'go()', 'p{}')
  t.equal(page.body, '<html><style>p{}</style><script>go()</script></html>')
  const csp = page.headers!['content-security-policy']!
  t.match(csp, `script-src ${hash('go()')}`)
  t.match(csp, `style-src ${hash('p{}')}`)
  t.match(csp, "default-src 'none'")
  t.match(csp, "connect-src 'self'")
  t.match(csp, "frame-ancestors 'none'")
})

t.test('the shipped page: its placeholders replaced, one script and one style, each allowed', async (t) => {
  const page = await readPage()
  t.equal(page.contentType, 'text/html; charset=utf-8')
  t.notMatch(page.body, /\/\*(SCRIPT|STYLE)\*\//)
  const script = /<script>([\s\S]*?)<\/script>/.exec(page.body)![1]!
  const style = /<style>([\s\S]*?)<\/style>/.exec(page.body)![1]!
  t.equal(page.body.match(/<script/g)!.length, 1)
  t.match(page.headers!['content-security-policy'], hash(script))
  t.match(page.headers!['content-security-policy'], hash(style))
  t.notMatch(page.body, /https?:\/\//, 'nothing fetched from elsewhere')
})

t.test('signature rows', async (t) => {
  t.equal(schemaRows(undefined), null)
  t.same(
    schemaRows({
      kind: 'columns',
      columns: [
        {name: 'a', type: {kind: 'scalar', type: 'long'}, required: true},
        {name: 'tags', type: {kind: 'array', items: {kind: 'scalar', type: 'string'}}, required: false},
        {
          name: 'o',
          type: {kind: 'object', properties: [{name: 'x', type: {kind: 'map', values: {kind: 'scalar', type: 'double'}}, required: false}]},
          required: true,
        },
        {type: {kind: 'any'}, required: true},
      ],
    }),
    [
      {name: 'a', type: 'long', required: true},
      {name: 'tags', type: 'Array(string)', required: false},
      {name: 'o', type: 'Object(x: Map(str -> double) (optional))', required: true},
      {name: null, type: 'Any', required: true},
    ],
  )
  t.same(schemaRows({kind: 'tensors', tensors: [{dtype: 'float64', shape: [-1, 4]}]}), [{name: null, type: 'tensor float64', shape: [-1, 4]}])
  t.same(
    paramRows([
      {name: 'k', type: 'long', default: 3},
      {name: 'v', type: 'double', shape: [-1]},
    ]),
    [
      {name: 'k', type: 'long', default: 3},
      {name: 'v', type: 'Array(double)'},
    ],
  )
})
