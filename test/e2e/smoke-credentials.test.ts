// `mlserve smoke --url` against servers that need credentials, with MLflow's real scorer: an mlserve
// serve with API keys (the key from --auth-token-file or MLSERVE_AUTH_TOKENS, never the command line),
// and a reverse proxy with Basic auth (the user:password of --url, which smoke used to drop).
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, request, type Server as HttpServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {runMlserve, startMlserve} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-smoke-credentials-'))
t.teardown(() => rmSync(dir, {recursive: true, force: true}))
const model = fixtureModel('sum')
const KEY = 'smoke-key-0123456789abcdef'

/** A reverse proxy to `upstream` that answers 401 unless the request has Basic auth for user "ci" and password "p@ss:w". */
async function basicAuthProxy(upstream: string): Promise<{url: string; seen: string[]; server: HttpServer}> {
  const expected = `Basic ${Buffer.from('ci:p@ss:w').toString('base64')}`
  const seen: string[] = []
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization === expected ? 'authorized' : 'refused'}`)
    if (req.headers.authorization !== expected) {
      req.resume()
      res.writeHead(401, {'www-authenticate': 'Basic realm="ci"'}).end('no')
      return
    }

    const target = new URL(req.url ?? '/', upstream)
    const forwarded = request(target, {method: req.method, headers: {...req.headers, host: target.host}}, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    req.pipe(forwarded)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {url: `http://ci:p%40ss%3Aw@127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server}
}

t.test('an API key from --auth-token-file or MLSERVE_AUTH_TOKENS; without one the checks get 401', async (t) => {
  const server = await startMlserve(['-m', model, '--no-access-log'], {env: toolchainEnv({MLSERVE_AUTH_TOKENS: KEY})})
  t.teardown(() => server.stop())
  const keys = path.join(dir, 'keys.txt')
  writeFileSync(keys, `# CI\n${KEY}\n`)
  chmodSync(keys, 0o600)

  const without = await runMlserve(['smoke', '--url', server.url, '-m', model, '--json'])
  t.equal(without.code, 85, 'no key: the checks fail')
  const cases = (JSON.parse(without.stdout) as {cases: Array<{name: string; status: string; message?: string}>}).cases
  t.match(
    cases.find((c) => c.name === 'bad input is refused'),
    {status: 'failed', message: /other than 401 and 403, got 401/},
    'a 401 is not "bad input refused"',
  )

  const withFile = await runMlserve(['smoke', '--url', server.url, '-m', model, '--auth-token-file', keys])
  t.equal(withFile.code, 0, withFile.stderr)
  t.notMatch(withFile.stderr, KEY, 'the key is never printed')

  const withEnv = await runMlserve(['smoke', '--url', server.url, '-m', model], {env: toolchainEnv({MLSERVE_AUTH_TOKENS: KEY})})
  t.equal(withEnv.code, 0, withEnv.stderr)

  const open = path.join(dir, 'open.txt')
  writeFileSync(open, `${KEY}\n`)
  chmodSync(open, 0o644)
  const readable = await runMlserve(['smoke', '--url', server.url, '-m', model, '--auth-token-file', open])
  t.equal(readable.code, 31, 'a key file others can read is refused, as serve refuses it')

  const noUrl = await runMlserve(['smoke', '-m', model, '--auth-token-file', keys])
  t.equal(noUrl.code, 2)
  t.match(noUrl.stderr, /--auth-token-file applies to --url only/)
})

t.test('--url http://user:password@host: the credentials go as Basic auth, and the report hides them', async (t) => {
  const server = await startMlserve(['-m', model, '--no-access-log'])
  t.teardown(() => server.stop())
  const proxy = await basicAuthProxy(server.url)
  t.teardown(() => proxy.server.close())

  const result = await runMlserve(['smoke', '--url', proxy.url, '-m', model, '--wait', '30', '--json'])
  t.equal(result.code, 0, result.stderr)
  t.ok(proxy.seen.length > 1, 'requests went through the proxy')
  t.same(
    proxy.seen.filter((line) => !line.endsWith('authorized')),
    [],
    'each one with the Basic credentials of the URL',
  )
  const report = JSON.parse(result.stdout) as {url: string}
  t.notMatch(report.url, /p%40ss|p@ss/, 'the report hides the password')
  t.notMatch(result.stderr, /p%40ss|p@ss/)
})
