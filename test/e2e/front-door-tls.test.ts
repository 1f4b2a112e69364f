// TLS end to end with MLflow's real scorer: HTTPS with a self-signed certificate made here by openssl,
// client certificates (mTLS) accepted and refused, a new certificate on SIGHUP without dropping an open
// connection, and bad or mismatched files refused before anything starts (exit 32).
import {X509Certificate} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {Agent, request, type RequestOptions} from 'node:https'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {connect} from 'node:tls'

import t from 'tap'

import {selfSigned, signedBy} from '../helpers/certs.js'
import {MLSERVE_BIN, runMlserve, spawnProc, type Server} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-tls-'))
t.teardown(() => rmSync(dir, {recursive: true, force: true}))
const model = fixtureModel('sum')
const server1 = selfSigned(dir, 'server1')
const server2 = selfSigned(dir, 'server2')
const ca = selfSigned(dir, 'client-ca', true)
const goodClient = signedBy(dir, 'client-good', ca)
const strayClient = selfSigned(dir, 'client-stray')
const BODY = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'
const read = (file: string) => readFileSync(file)

/** mlserve serve over HTTPS on a free port; resolves once a scorer is ready. */
async function startHttps(args: readonly string[]): Promise<Server> {
  const proc = spawnProc(
    process.execPath,
    [MLSERVE_BIN, 'serve', '--env-manager', 'local', '--python', toolchainPython(), '-p', '0', '-m', model, ...args],
    {env: toolchainEnv()},
  )
  const [, url] = await proc.waitForOutput(/listening on (https:\/\/\S+)/)
  await proc.waitForOutput(/ready: serving/)
  return {...proc, url: url!}
}

/** One HTTPS request; `reused` says whether it went on an already open connection. */
function call(url: string, options: RequestOptions & {body?: string}) {
  return new Promise<{status: number; body: string; reused: boolean}>((resolve, reject) => {
    const req = request(`${url}${options.path ?? '/ping'}`, options, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, body, reused: req.reusedSocket}))
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

const invocation = {method: 'POST', path: '/invocations', headers: {'content-type': 'application/json'}, body: BODY}

/** The SHA-256 fingerprint of the certificate a new connection is shown. */
function servedFingerprint(url: string): Promise<string> {
  const {hostname, port} = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({host: hostname, port: Number(port), ca: [read(server1.cert), read(server2.cert)]}, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256)
      socket.end()
    })
    socket.on('error', reject)
  })
}

t.test('bad, missing or mismatched TLS files fail the start with exit 32, before the model is looked at', async (t) => {
  const garbage = path.join(dir, 'garbage.pem')
  writeFileSync(garbage, 'not a certificate\n')
  const missingModel = path.join(dir, 'no-such-model')
  const cases: Array<[string, string[], RegExp]> = [
    ['mismatched key', ['--tls-cert', server1.cert, '--tls-key', server2.key], /is not the private key of --tls-cert/],
    ['garbage certificate', ['--tls-cert', garbage, '--tls-key', server1.key], /is not a PEM certificate/],
    ['missing key file', ['--tls-cert', server1.cert, '--tls-key', path.join(dir, 'absent.key')], /cannot be read: ENOENT/],
    ['certificate without key', ['--tls-cert', server1.cert], /--tls-key is missing/],
    ['client CA without TLS', ['--tls-client-ca', ca.cert], /needs --tls-cert and --tls-key/],
    ['garbage client CA', ['--tls-cert', server1.cert, '--tls-key', server1.key, '--tls-client-ca', garbage], /--tls-client-ca .* is not a PEM/],
  ]
  for (const [name, args, message] of cases) {
    // eslint-disable-next-line no-await-in-loop
    const result = await runMlserve(['serve', '-m', missingModel, '--env-manager', 'local', '-p', '0', ...args])
    t.equal(result.code, 32, `${name}: exit 32`)
    t.match(result.stderr, /TLS_INVALID/, name)
    t.match(result.stderr, message, name)
  }
})

t.test('HTTPS with the certificate, swapped on SIGHUP while a connection stays open', async (t) => {
  const cert = path.join(dir, 'live.pem')
  const key = path.join(dir, 'live.key')
  writeFileSync(cert, read(server1.cert))
  writeFileSync(key, read(server1.key))
  const server = await startHttps(['--tls-cert', cert, '--tls-key', key])
  t.teardown(() => server.stop())
  const agent = new Agent({keepAlive: true, maxSockets: 1, ca: [read(server1.cert), read(server2.cert)]})
  t.teardown(() => agent.destroy())

  const first = await call(server.url, {...invocation, agent})
  t.same({status: first.status, body: first.body}, {status: 200, body: '{"predictions": [3, 7]}'}, "the scorer's answer over HTTPS")
  t.equal(await servedFingerprint(server.url), new X509Certificate(read(server1.cert)).fingerprint256)
  await t.rejects(call(server.url, {path: '/ping'}), /self-signed|self signed/, 'a client that does not trust it refuses it')
  const slash = await new Promise<{status?: number; location?: string}>((resolve, reject) => {
    const req = request(`${server.url}/invocations/`, {...invocation, path: '/invocations/', agent}, (res) => {
      res.resume()
      resolve({status: res.statusCode, location: res.headers.location})
    })
    req.on('error', reject)
    req.end(BODY)
  })
  t.same(slash, {status: 307, location: `${server.url}/invocations`}, "the scorer's redirect keeps https")

  writeFileSync(cert, read(server2.cert))
  writeFileSync(key, read(server2.key))
  server.child.kill('SIGHUP')
  await server.waitForOutput(/re-read the TLS certificate and key/)
  const after = await call(server.url, {...invocation, agent})
  t.equal(after.status, 200)
  t.ok(after.reused, 'the open connection was kept and served')
  t.equal(await servedFingerprint(server.url), new X509Certificate(read(server2.cert)).fingerprint256, 'new connections get the new one')
})

t.test('--tls-client-ca: a client certificate signed by the CA is accepted, another refused', async (t) => {
  const server = await startHttps(['--tls-cert', server1.cert, '--tls-key', server1.key, '--tls-client-ca', ca.cert])
  t.teardown(() => server.stop())
  const trust = {ca: read(server1.cert), agent: false as const}
  const good = await call(server.url, {...invocation, ...trust, cert: read(goodClient.cert), key: read(goodClient.key)})
  t.same({status: good.status, body: good.body}, {status: 200, body: '{"predictions": [3, 7]}'}, 'a client of the CA')
  await t.rejects(
    call(server.url, {...invocation, ...trust, cert: read(strayClient.cert), key: read(strayClient.key)}),
    'a certificate of another issuer',
  )
  await t.rejects(call(server.url, {...invocation, ...trust}), 'no client certificate')
})
