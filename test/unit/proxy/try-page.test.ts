// The page to try the model, assembled: its script and style inlined with the hashes its Content-Security-Policy
// allows, nothing of a model in it; and the signature rows it shows, as MLflow spells the types.
import {createHash} from 'node:crypto'

import t from 'tap'

import {createProxyHandler} from '../../../src/proxy/app.js'
import {singleUpstream} from '../../../src/proxy/forward.js'
import {prepareFrontDoor} from '../../../src/proxy/front-door.js'
import {ProxyServer} from '../../../src/proxy/server.js'
import {paramRows, schemaRows} from '../../../src/proxy/signature-rows.js'
import {assemblePage, pageRoutes, readPage} from '../../../src/proxy/try-page.js'
import {harness} from '../../helpers/proxy.js'

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

t.test('/ui/ redirects to /ui (under the prefix, with no key, its query kept), where the page is served', async (t) => {
  const h = await harness(t)
  const handler = createProxyHandler({upstreams: singleUpstream(h.pool), state: () => 'ready', timeoutMs: 2000, operational: await pageRoutes()})
  const door = await prepareFrontDoor({staticPrefix: '/p', authTokens: ['a-key-0123456789']})
  const page = await readPage()
  const check = async (name: string, served: typeof handler, prefix: string) => {
    const server = new ProxyServer(served)
    const url = `http://127.0.0.1:${await server.listen('127.0.0.1', 0)}${prefix}`
    t.teardown(() => server.close(0))
    const slash = await fetch(`${url}/ui/`, {redirect: 'manual'})
    t.equal(slash.status, 308, `${name}: /ui/ redirects`)
    t.equal(slash.headers.get('location'), `${prefix}/ui`, `${name}: to the page`)
    const query = await fetch(`${url}/ui/?model=iris&x=1`, {redirect: 'manual'})
    t.equal(query.headers.get('location'), `${prefix}/ui?model=iris&x=1`, `${name}: the query string goes along`)
    const followed = await fetch(`${url}/ui/`)
    t.equal(followed.status, 200, `${name}: followed, the page`)
    t.equal(await followed.text(), page.body)
  }

  await check('plain', handler, '')
  await check('--static-prefix /p and an API key', door!.guard(handler), '/p')
  t.same(h.received, [], 'nothing reached the scorer')
})
