// What smoke --url sends: Basic auth from the URL's user:password (percent-escapes decoded), the API key from
// the token file (first key, mode checked as serve checks it) or MLSERVE_AUTH_TOKENS, and the origin without credentials.
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {basicAuthOf, targetOf} from '../../../src/smoke/credentials.js'

const basic = (pair: string) => `Basic ${Buffer.from(pair).toString('base64')}`

t.test('the URL: its origin without credentials, and Basic auth from them', async (t) => {
  t.equal(basicAuthOf(new URL('http://127.0.0.1:5000')), undefined)
  t.equal(basicAuthOf(new URL('http://ci:p%40ss%3Aw@host:1')), basic('ci:p@ss:w'))
  t.equal(basicAuthOf(new URL('http://only-user@host:1')), basic('only-user:'))
  t.same(await targetOf('https://u:pw@host:8443/', undefined, undefined), {origin: 'https://host:8443', headers: {authorization: basic('u:pw')}})
})

t.test('the API key: the first in the file, else the first of MLSERVE_AUTH_TOKENS', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-credentials-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const file = path.join(dir, 'keys')
  writeFileSync(file, '# team\nfirst\nsecond\n')
  chmodSync(file, 0o600)
  t.same((await targetOf('http://h:1', file, 'from-env')).headers, {'x-api-key': 'first'})
  t.same((await targetOf('http://h:1', undefined, ' a , b')).headers, {'x-api-key': 'a'})
  t.same((await targetOf('http://u:p@h:1', undefined, 'k')).headers, {authorization: basic('u:p'), 'x-api-key': 'k'})
  chmodSync(file, 0o644)
  await t.rejects(targetOf('http://h:1', file, undefined), {code: 'AUTH_TOKENS_INVALID'})
  await t.rejects(targetOf('http://h:1', undefined, ' , '), {code: 'AUTH_TOKENS_INVALID'})
})
