// Credentials in an artifact URI (`http://user:password@host/...`): sent as Basic auth, never printed,
// logged or written into the model cache. The artifact proxy is a small server in the test that checks them.
import {mkdtemp, readFile, readdir, rm, stat} from 'node:fs/promises'
import {createServer} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {runMlserve, startMlserve} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

const USER = 'alice'
const PASSWORD = 's3cret-pw'
const ENDPOINT = '/api/2.0/mlflow-artifacts/artifacts'
const model = fixtureModel('sum')

/** mlflow's artifact proxy for one model under `models/sum`, answering only Basic alice:s3cret-pw. */
const seen: Array<string | undefined> = []
const proxy = createServer(async (req, res) => {
  seen.push(req.headers.authorization)
  if (req.headers.authorization !== `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`) {
    res.writeHead(401, {'www-authenticate': 'Basic realm="mlflow"'}).end('unauthenticated')
    return
  }

  const url = new URL(req.url ?? '/', 'http://x')
  if (url.pathname === ENDPOINT) {
    const listed = url.searchParams.get('path') ?? ''
    const files = listed === 'models/sum' ? await readdir(model) : []
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({files: files.map((name) => ({path: name, is_dir: false}))}))
    return
  }

  const file = decodeURIComponent(url.pathname.slice(ENDPOINT.length + 1))
  if (!file.startsWith('models/sum/') || file.includes('..')) {
    res.writeHead(404).end('{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such artifact"}')
    return
  }

  res.end(await readFile(path.join(model, file.slice('models/sum/'.length))))
})
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>((resolve) => proxy.close(() => resolve())))
const {port} = proxy.address() as {port: number}
const uriWith = (password: string, where = 'models/sum') => `http://${USER}:${password}@127.0.0.1:${port}${ENDPOINT}/${where}`

/** Every file under dir that is not one of the model's own (markers, metadata, locks), with its text. */
async function cacheRecords(dir: string): Promise<string[]> {
  const texts: string[] = []
  const modelFiles = new Set(await readdir(model))
  for (const entry of await readdir(dir, {recursive: true})) {
    const file = path.join(dir, entry)
    // eslint-disable-next-line no-await-in-loop
    if (modelFiles.has(path.basename(entry)) || !(await stat(file)).isFile()) continue
    // eslint-disable-next-line no-await-in-loop
    texts.push(`${entry}: ${await readFile(file, 'utf8')}`)
  }

  return texts
}

t.test('user:password in an artifact URI is sent as Basic auth and never printed or stored', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'mlserve-secrets-'))
  t.teardown(() => rm(root, {recursive: true, force: true}))
  const env = toolchainEnv({MLSERVE_MODEL_ROOT: root})
  const server = await startMlserve(['-m', uriWith(PASSWORD)], {env})
  t.teardown(() => server.stop())
  const res = await fetch(`${server.url}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
  })
  t.equal(await res.text(), '{"predictions": [3]}', 'the model downloaded with the credentials serves')
  t.ok(
    seen.length > 3 && seen.every((auth) => auth === `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`),
    'Basic auth on every request',
  )
  t.match(server.stderr(), new RegExp(`ready: serving http://\\*\\*\\*@127\\.0\\.0\\.1:${port}/`), 'the ready line shows the URI redacted')
  t.notMatch(server.stderr() + server.stdout(), PASSWORD, 'the password is printed nowhere')
  const records = await cacheRecords(root)
  t.ok(
    records.some((text) => text.includes('.mlserve-env.json')),
    'the cache marker was read',
  )
  t.notMatch(records.join('\n'), PASSWORD, 'the cache marker and metadata hold no password')
})

t.test('errors about a URI with credentials never show them', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'mlserve-secrets-err-'))
  t.teardown(() => rm(root, {recursive: true, force: true}))
  const env = toolchainEnv({MLSERVE_MODEL_ROOT: root, MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0'})
  const args = ['serve', '-p', '0', '--env-manager', 'local', '--python', toolchainPython(), '-m']
  const missing = await runMlserve([...args, uriWith(PASSWORD, 'models/nothing')], {env})
  t.equal(missing.code, 56)
  t.match(missing.stderr, /No artifacts found at http:\/\/\*\*\*@127\.0\.0\.1/)
  const wrong = await runMlserve([...args, uriWith('wrong-pw')], {env})
  t.equal(wrong.code, 57)
  t.match(wrong.stderr, /code: TRACKING_UNAUTHENTICATED/)
  for (const result of [missing, wrong]) t.notMatch(result.stderr + result.stdout, /s3cret-pw|wrong-pw/, 'no password in the output')
})
