// Benchmarks the mlserve proxy against the reference it replaces, in one run: starts
// `mlflow models serve` and `mlserve serve` (built CLI) on the same fixture model, checks that both
// answer the request body with identical bytes, then loads them alternately (ABBA rounds, so drift
// cancels out) with wrk (or autocannon) and prints requests/s and p50/p99 latency per
// (workers, connections) as a Markdown table; the raw numbers go to bench/results/proxy-<time>.json.
//
//   npm run bench -- [--workers 1,2] [--connections 1,16] [--duration 5] [--rounds 3] [--warmup 2]
//                    [--tool wrk|autocannon] [--model <dir>] [--body <file>]
import {execFileSync, spawn} from 'node:child_process'
import {once} from 'node:events'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {parseArgs} from 'node:util'

import autocannon from 'autocannon'

import {REPO_ROOT, ensureFixtures, fixtureModel, toolchainBin, toolchainEnv, toolchainPython} from '../test/helpers/toolchain.js'

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => existsSync(file))
const READY_TIMEOUT_MS = 180_000
const STOP_GRACE_MS = 15_000
const DEFAULT_BODY = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'
const list = (value) => value.split(',').map(Number)
function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length / 2
  return Number.isInteger(mid) ? (sorted[mid - 1] + sorted[mid]) / 2 : sorted[Math.floor(mid)]
}

function options() {
  const {values} = parseArgs({
    options: {
      model: {type: 'string'},
      body: {type: 'string'},
      workers: {type: 'string', default: '1'},
      connections: {type: 'string', default: '1,16'},
      duration: {type: 'string', default: '5'},
      rounds: {type: 'string', default: '3'},
      warmup: {type: 'string', default: '2'},
      tool: {type: 'string', default: hasWrk() ? 'wrk' : 'autocannon'},
    },
  })
  if (!['wrk', 'autocannon'].includes(values.tool)) throw new Error(`--tool must be wrk or autocannon, not ${values.tool}`)
  return {
    model: values.model ? path.resolve(values.model) : undefined,
    body: values.body ? readFileSync(values.body, 'utf8') : DEFAULT_BODY,
    workers: list(values.workers),
    connections: list(values.connections),
    duration: Number(values.duration),
    rounds: Number(values.rounds),
    warmup: Number(values.warmup),
    tool: values.tool,
  }
}

function hasWrk() {
  try {
    execFileSync('wrk', ['--version'], {stdio: 'ignore'})
    return true
  } catch (error) {
    return error.code !== 'ENOENT' // wrk --version exits 1 after printing its version
  }
}

function toolVersion(tool) {
  if (tool === 'autocannon') return `autocannon ${JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules/autocannon/package.json'), 'utf8')).version}`
  try {
    execFileSync('wrk', ['--version'], {encoding: 'utf8'})
  } catch (error) {
    return error.stdout.split('\n')[0].replace(/ Copyright.*/, '')
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address()
      server.close(() => resolve(port))
    })
  })
}

// ---- children: each in its own process group, tied to this process by setpriv --pdeathsig --------

/** Spawns file in a new process group that gets SIGKILL when this process dies. */
function spawnTied(file, args, options) {
  const argv = SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', '--', file, ...args] : [file, ...args]
  return spawn(argv[0], argv.slice(1), {cwd: REPO_ROOT, detached: true, ...options})
}

const running = new Set()

async function startServer(name, file, args) {
  const port = await freePort()
  const child = spawnTied(file, args(port), {env: toolchainEnv(), stdio: ['ignore', 'pipe', 'pipe']})
  let log = ''
  const keep = (chunk) => (log = (log + chunk).slice(-20_000))
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const server = {name, url: `http://127.0.0.1:${port}`, child, exited: once(child, 'close'), log: () => log}
  running.add(server)
  await waitForPing(server)
  return server
}

async function waitForPing(server) {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) break
    const status = await fetch(`${server.url}/ping`).then((res) => res.arrayBuffer().then(() => res.status), () => 0)
    if (status === 200) return
    await sleep(250)
  }
  throw new Error(`${server.name} did not become ready on ${server.url}; output:\n${server.log()}`)
}

/** SIGINT to the whole process group, then SIGKILL after STOP_GRACE_MS. */
async function stopServer(server) {
  running.delete(server)
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  signalGroup(server, 'SIGINT')
  const timer = setTimeout(() => signalGroup(server, 'SIGKILL'), STOP_GRACE_MS)
  await server.exited
  clearTimeout(timer)
}

function signalGroup(server, signal) {
  try {
    process.kill(-server.child.pid, signal)
  } catch {} // already gone
}

const stopAll = () => Promise.all([...running].map(stopServer))
process.on('exit', () => running.forEach((server) => signalGroup(server, 'SIGKILL')))

// ---- load generators: each returns {requests, seconds, p50, p99 (ms), errors} --------------------

async function wrk(url, connections, seconds, bodyFile) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mlserve-bench-'))
  const script = path.join(dir, 'post.lua')
  writeFileSync(script, `local f = assert(io.open(${JSON.stringify(bodyFile)}, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
function done(s, latency)
  local e = s.errors
  io.write(string.format("\\nRESULT %d %d %d %d %d\\n", s.requests, s.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`)
  try {
    const args = ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '--timeout', '10s', '-s', script, `${url}/invocations`]
    const child = spawnTied('wrk', args, {stdio: ['ignore', 'pipe', 'inherit']})
    let out = ''
    child.stdout.on('data', (chunk) => (out += chunk))
    const [code] = await once(child, 'close')
    const match = /^RESULT (\d+) (\d+) (\d+) (\d+) (\d+)$/m.exec(out)
    if (code !== 0 || !match) throw new Error(`wrk failed (exit ${code}):\n${out}`)
    const [requests, durationUs, p50Us, p99Us, errors] = match.slice(1).map(Number)
    return {requests, seconds: durationUs / 1e6, p50: p50Us / 1000, p99: p99Us / 1000, errors}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

async function autocannonLoad(url, connections, seconds, bodyFile) {
  const result = await autocannon({
    url: `${url}/invocations`,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: readFileSync(bodyFile),
    connections,
    duration: seconds,
  })
  return {requests: result.requests.total, seconds: result.duration, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts + result.non2xx}
}

// ---- the benchmark --------------------------------------------------------------------------------

async function invoke(server, body) {
  const res = await fetch(`${server.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body})
  return {status: res.status, bytes: Buffer.from(await res.arrayBuffer())}
}

async function checkSameAnswer(a, b, body) {
  const [x, y] = await Promise.all([invoke(a, body), invoke(b, body)])
  if (x.status !== 200 || x.status !== y.status || !x.bytes.equals(y.bytes)) {
    throw new Error(`answers differ: ${a.name} ${x.status} ${x.bytes} vs ${b.name} ${y.status} ${y.bytes}`)
  }
  return x.bytes.toString()
}

/** Rounds of A B, B A, A B … per connection count; returns per-round samples keyed by server name. */
async function measure(servers, opts, load) {
  const rows = []
  for (const connections of opts.connections) {
    const samples = Object.fromEntries(servers.map((s) => [s.name, []]))
    for (let round = 0; round < opts.rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        const sample = await load(server.url, connections, opts.duration)
        if (sample.errors > 0) console.error(`! ${server.name} c=${connections} round ${round + 1}: ${sample.errors} errors`)
        samples[server.name].push(sample)
      }
    }
    rows.push({connections, ...Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, summarize(s)]))})
  }
  return rows
}

function summarize(samples) {
  const requests = samples.reduce((sum, s) => sum + s.requests, 0)
  const seconds = samples.reduce((sum, s) => sum + s.seconds, 0)
  return {
    rps: requests / seconds,
    p50: median(samples.map((s) => s.p50)),
    p99: median(samples.map((s) => s.p99)),
    errors: samples.reduce((sum, s) => sum + s.errors, 0),
    rounds: samples,
  }
}

async function benchWorkers(workers, opts, model, load) {
  const mlflow = await startServer('mlflow', path.join(toolchainBin(), 'mlflow'), (port) =>
    ['models', 'serve', '-m', model, '--env-manager', 'local', '-h', '127.0.0.1', '-p', String(port), '-w', String(workers)])
  const mlserve = await startServer('mlserve', process.execPath, (port) =>
    [path.join(REPO_ROOT, 'bin/run.js'), 'serve', '-m', model, '--env-manager', 'local', '--python', toolchainPython(), '-h', '127.0.0.1', '-p', String(port), '-w', String(workers)])
  try {
    const answer = await checkSameAnswer(mlflow, mlserve, opts.body)
    const mlflowVersion = await fetch(`${mlflow.url}/version`).then((res) => res.text())
    console.error(`# workers=${workers}: both answer ${answer.trim()}; warming up`)
    for (const server of [mlflow, mlserve]) await load(server.url, Math.max(...opts.connections), opts.warmup)
    const rows = await measure([mlflow, mlserve], opts, load)
    return {mlflowVersion, rows: rows.map((row) => ({workers, ...row}))}
  } finally {
    await stopAll()
  }
}

const fmt = (n, digits = 1) => n.toFixed(digits)

function table(rows) {
  const lines = [
    '| workers | connections | mlflow req/s | mlserve req/s | ratio | mlflow p50 ms | mlserve p50 ms | Δp50 ms | mlflow p99 ms | mlserve p99 ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const {workers, connections, mlflow: a, mlserve: b} of rows) {
    lines.push(`| ${workers} | ${connections} | ${fmt(a.rps, 0)} | ${fmt(b.rps, 0)} | ${fmt(b.rps / a.rps, 3)}x | ${fmt(a.p50, 2)} | ${fmt(b.p50, 2)} | ${fmt(b.p50 - a.p50, 2)} | ${fmt(a.p99, 2)} | ${fmt(b.p99, 2)} |`)
  }
  return lines.join('\n')
}

async function main() {
  const opts = options()
  const loadBefore = os.loadavg()[0]
  ensureFixtures()
  const model = opts.model ?? fixtureModel('sum')
  const bodyDir = mkdtempSync(path.join(os.tmpdir(), 'mlserve-bench-body-'))
  const bodyFile = path.join(bodyDir, 'body.json')
  writeFileSync(bodyFile, opts.body)
  const tool = opts.tool === 'wrk' ? wrk : autocannonLoad
  const load = (url, connections, seconds) => tool(url, connections, seconds, bodyFile)
  try {
    const rows = []
    let mlflowVersion
    for (const workers of opts.workers) {
      const result = await benchWorkers(workers, opts, model, load)
      mlflowVersion = result.mlflowVersion
      rows.push(...result.rows)
    }

    const machine = {nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model, loadavgBefore: loadBefore, node: process.version, mlflow: mlflowVersion, tool: toolVersion(opts.tool)}
    const {body, ...settings} = opts
    console.log(`\n${table(rows)}\n`)
    console.log(`Machine: ${machine.nproc} CPUs (${machine.cpu}), load average ${fmt(loadBefore, 2)} before the run, Node ${machine.node}, mlflow ${machine.mlflow}, ${machine.tool}.`)
    console.log(`Throughput = total requests / total time over ${opts.rounds} rounds of ${opts.duration} s (ABBA order); p50/p99 = median of the per-round percentiles.`)
    const resultsDir = path.join(REPO_ROOT, 'bench/results')
    mkdirSync(resultsDir, {recursive: true})
    const file = path.join(resultsDir, `proxy-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
    writeFileSync(file, JSON.stringify({date: new Date().toISOString(), machine, settings: {...settings, model}, rows}, null, 2))
    console.error(`# results written to ${path.relative(REPO_ROOT, file)}`)
  } finally {
    rmSync(bodyDir, {recursive: true, force: true})
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.error(`# ${signal}: stopping the servers`)
    stopAll().finally(() => process.exit(130))
  })
}

main().catch(async (error) => {
  console.error(error)
  await stopAll()
  process.exitCode = 1
})
