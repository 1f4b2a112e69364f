// Benchmarks the front door's cost per request, in one run: starts `mlserve serve` (the built CLI) three
// times on the same fixture model (plain HTTP, with an API key, with TLS on a self-signed certificate
// made here by openssl), checks that all three answer the body with the same bytes, then sends requests
// one at a time on one keep-alive connection to each in turn (rounds in rotating order, so drift and
// background load hit all alike), for POST /invocations and for mlserve's own GET /openapi.model.json (no
// scorer: the front door's share shows), and prints p50/p99 per request as a Markdown table. A second table
// times the key check alone in this process (no network, no scorer). Raw numbers: bench/results/frontdoor-<time>.json.
//
//   npm run build && node bench/frontdoor.js [--requests 2000] [--rounds 6] [--warmup 300] [--model <dir>]
import {execFileSync} from 'node:child_process'
import {closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {parseArgs} from 'node:util'

import {Agent, request} from 'undici'

import {REPO_ROOT, ensureFixtures, fixtureModel, toolchainEnv, toolchainPython} from '../test/helpers/toolchain.js'

import {freePort, groupAlive, hasExited, median, runBenchmark, signalGroup, spawnTied} from './lib.js'

const BODY = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'
const TOKEN = 'bench-token-0123456789abcdef0123456789abcdef'
const WORK_DIR = mkdtempSync(path.join(os.tmpdir(), 'mlserve-bench-frontdoor-'))
const running = new Set()
const lifecycle = {stopping: false}

function options() {
  const {values} = parseArgs({
    options: {
      model: {type: 'string'},
      requests: {type: 'string', default: '2000'},
      rounds: {type: 'string', default: '6'},
      warmup: {type: 'string', default: '300'},
    },
  })
  return {
    model: values.model ? path.resolve(values.model) : undefined,
    requests: Number(values.requests),
    rounds: Number(values.rounds),
    warmup: Number(values.warmup),
  }
}

/** A self-signed certificate for 127.0.0.1, made by openssl in the work directory. */
function makeCertificate() {
  const cert = path.join(WORK_DIR, 'server.pem')
  const key = path.join(WORK_DIR, 'server.key')
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  execFileSync(
    'openssl',
    ['req', '-x509', ...ec, '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    {
      stdio: 'pipe',
    },
  )
  return {cert, key}
}

/** `mlserve serve` on a free port; resolves once its log says ready. */
async function startMlserve(name, model, extraArgs, extraEnv = {}) {
  const port = await freePort()
  const logFile = path.join(WORK_DIR, `${name}.log`)
  const out = openSync(logFile, 'w')
  const args = [path.join(REPO_ROOT, 'bin/run.js'), 'serve', '-m', model, '--env-manager', 'local', '--python', toolchainPython()]
  const child = spawnTied(process.execPath, [...args, '-p', String(port), '--no-access-log', ...extraArgs], {
    env: toolchainEnv(extraEnv),
    stdio: ['ignore', out, out],
  })
  closeSync(out)
  const server = {name, child, log: () => readFileSync(logFile, 'utf8')}
  running.add(server)
  const deadline = Date.now() + 180_000
  while (!/ready: serving/.test(server.log())) {
    if (hasExited(child) || Date.now() > deadline || lifecycle.stopping) throw new Error(`${name} did not start:\n${server.log()}`)
    await sleep(200)
  }
  server.url = /ready: serving .* on (https?:\/\/\S+)/.exec(server.log())[1]
  return server
}

async function stopServer(server) {
  running.delete(server)
  signalGroup(server.child.pid, 'SIGINT')
  const deadline = Date.now() + 15_000
  while (groupAlive(server.child.pid) && Date.now() < deadline) await sleep(100)
  if (groupAlive(server.child.pid)) signalGroup(server.child.pid, 'SIGKILL')
}

const stopAll = () => Promise.all([...running].map(stopServer))
process.on('exit', () => {
  for (const server of running) signalGroup(server.child.pid, 'SIGKILL')
  rmSync(WORK_DIR, {recursive: true, force: true})
})

/** The routes timed: a prediction (through the scorer), and mlserve's own document (no scorer: the front door's share shows). */
const ROUTES = [
  {name: 'POST /invocations', path: '/invocations', method: 'POST', body: BODY},
  {name: 'GET /openapi.model.json', path: '/openapi.model.json', method: 'GET'},
]

/** One request on the server's one keep-alive connection: its answer and its time in ms. */
async function invoke(target, route = ROUTES[0]) {
  const start = performance.now()
  const {'content-type': _json, ...getHeaders} = target.headers
  const headers = route.method === 'POST' ? target.headers : getHeaders
  const res = await request(`${target.url}${route.path}`, {method: route.method, headers, body: route.body, dispatcher: target.agent})
  const text = await res.body.text()
  const ms = performance.now() - start
  if (res.statusCode !== 200) throw new Error(`${target.name}: ${res.statusCode} ${text}`)
  return {text, ms}
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

/** Times the key check alone: presentedToken + Keyring.accepts, as the front door runs them per request. */
async function keyCheckCost() {
  const {Keyring, presentedToken} = await import('../dist/proxy/auth.js')
  const keys = new Keyring([TOKEN, ...Array.from({length: 9}, (_, i) => `other-token-${i}`)])
  const req = {headers: {authorization: `Bearer ${TOKEN}`}}
  const n = 200_000
  let accepted = 0
  for (let i = 0; i < 10_000; i++) accepted += keys.accepts(presentedToken(req)) ? 1 : 0
  const start = performance.now()
  for (let i = 0; i < n; i++) accepted += keys.accepts(presentedToken(req)) ? 1 : 0
  const perCall = ((performance.now() - start) / n) * 1000
  if (accepted !== n + 10_000) throw new Error('the key check refused its own key')
  return {keys: 10, microsecondsPerCheck: perCall}
}

async function main() {
  const opts = options()
  await ensureFixtures()
  const model = opts.model ?? fixtureModel('sum')
  const tls = makeCertificate()
  const servers = [
    await startMlserve('plain HTTP', model, []),
    await startMlserve('API key', model, [], {MLSERVE_AUTH_TOKENS: TOKEN}),
    await startMlserve('TLS', model, ['--tls-cert', tls.cert, '--tls-key', tls.key]),
  ]
  const json = {'content-type': 'application/json'}
  const targets = servers.map((server) => ({
    name: server.name,
    url: server.url,
    headers: server.name === 'API key' ? {...json, authorization: `Bearer ${TOKEN}`} : json,
    agent: new Agent({connections: 1, pipelining: 1, connect: server.name === 'TLS' ? {ca: readFileSync(tls.cert)} : undefined}),
  }))
  const answers = await Promise.all(targets.map(async (target) => (await invoke(target)).text))
  if (new Set(answers).size !== 1) throw new Error(`the servers answered differently: ${answers.join(' | ')}`)
  for (const target of targets) for (let i = 0; i < opts.warmup; i++) await invoke(target)

  const perRound = new Map(ROUTES.flatMap((route) => targets.map((target) => [`${route.name} ${target.name}`, []])))
  for (let round = 0; round < opts.rounds; round++) {
    // Rotate the order each round, so no server always goes first or last.
    const order = targets.map((_, i) => targets[(i + round) % targets.length])
    for (const route of ROUTES) {
      for (const target of order) {
        const times = []
        for (let i = 0; i < opts.requests; i++) times.push((await invoke(target, route)).ms)
        times.sort((a, b) => a - b)
        perRound.get(`${route.name} ${target.name}`).push({p50: percentile(times, 50), p99: percentile(times, 99)})
      }
    }
  }

  await stopAll()
  await Promise.all(targets.map((target) => target.agent.close()))
  const check = await keyCheckCost()
  const rows = []
  console.log(
    `\nFixture ${path.basename(model)}, one keep-alive connection per server, ${opts.rounds} rounds of ${opts.requests} requests per route and server:\n`,
  )
  console.log('| route | server | p50 ms | p99 ms | p50 vs plain | p99 vs plain |')
  console.log('|---|---|---|---|---|---|')
  const delta = (value, base) => `${value - base >= 0 ? '+' : ''}${(value - base).toFixed(3)} ms`
  for (const route of ROUTES) {
    const routeRows = targets.map((target) => {
      const rounds = perRound.get(`${route.name} ${target.name}`)
      return {route: route.name, name: target.name, p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99))}
    })
    const [plain] = routeRows
    for (const row of routeRows) {
      const [d50, d99] = row === plain ? ['', ''] : [delta(row.p50, plain.p50), delta(row.p99, plain.p99)]
      console.log(`| ${row.route} | ${row.name} | ${row.p50.toFixed(3)} | ${row.p99.toFixed(3)} | ${d50} | ${d99} |`)
    }

    rows.push(...routeRows)
  }

  console.log(
    `\nThe key check alone (presentedToken + Keyring.accepts over ${check.keys} keys): ${check.microsecondsPerCheck.toFixed(2)} µs per request.`,
  )
  mkdirSync(path.join(REPO_ROOT, 'bench/results'), {recursive: true})
  const file = path.join(REPO_ROOT, 'bench/results', `frontdoor-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(
    file,
    JSON.stringify({options: opts, node: process.version, cpus: os.cpus().length, rows, perRound: Object.fromEntries(perRound), check}, null, 2),
  )
  console.log(`\nraw numbers: ${path.relative(REPO_ROOT, file)}`)
}

runBenchmark(main, stopAll, lifecycle)
