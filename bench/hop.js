// What mlserve's proxy itself costs per request (issue 24 item 2): one scorer on a Unix socket reached
// (a) directly, (b) through a raw node:net pass-through (bytes piped, no parsing) and (c) through mlserve's
// proxy as `mlserve serve` assembles it with its default flags (one or more builds, e.g. before and after a
// change), in alternating rounds, at each connection count. The scorers: MLflow's own scoring server for
// the `sum` fixture (uvicorn, the toolchain's interpreter) and a trivial Node server, which isolates the hop.
// Prints req/s, p50, p99 and the hop process's CPU per request, and what mlserve adds over the pass-through.
//
//   npm run build && node bench/hop.js [--connections 1,16] [--duration 3] [--rounds 3] [--scorers trivial,mlflow]
//                                       [--mlserve label=<root>,...] [--cpu-prof <dir>]
// --mlserve: mlserve builds to compare (default: this checkout, `current=.`; a root holds dist/ and node_modules).
// --cpu-prof: every mlserve proxy writes a V8 CPU profile there when it stops (read with scripts or DevTools).
import {once} from 'node:events'
import {mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync} from 'node:fs'
import {request} from 'node:http'
import {connect} from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {pathToFileURL} from 'node:url'
import {parseArgs} from 'node:util'

import {REPO_ROOT, ensureFixtures, fixtureModel, toolchainEnv, toolchainPython} from '../test/helpers/toolchain.js'

import {freePort, median, runBenchmark, signalGroup, spawnTied, sum} from './lib.js'

const BODY = '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}'
const REQUEST = Buffer.from(
  `POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
)
const WORK_DIR = mkdtempSync(path.join(os.tmpdir(), 'mlserve-hop-'))
const ROLES = path.join(REPO_ROOT, 'bench/hop-roles.js')
const lifecycle = {stopping: false}
const running = new Set()

function options() {
  const {values} = parseArgs({
    options: {
      connections: {type: 'string', default: '1,16'},
      duration: {type: 'string', default: '3'},
      rounds: {type: 'string', default: '3'},
      scorers: {type: 'string', default: 'trivial,mlflow'},
      mlserve: {type: 'string', default: `current=${REPO_ROOT}`},
      'cpu-prof': {type: 'string'},
    },
  })
  return {
    connections: values.connections.split(',').map(Number),
    duration: Number(values.duration),
    rounds: Number(values.rounds),
    scorers: values.scorers.split(','),
    builds: values.mlserve.split(',').map((entry) => {
      const [label, root] = entry.split('=')
      return {label, root: path.resolve(root)}
    }),
    cpuProf: values['cpu-prof'] && path.resolve(values['cpu-prof']),
  }
}

/** Spawns a process tied to this one; resolves once it says "ready" on stderr (or the socket answers). */
async function start(name, file, args, env, ready) {
  const child = spawnTied(file, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  child.stdout.resume() // the access log, as a container runtime would read it
  child.stderr.on('data', (chunk) => (output += chunk.toString()))
  const proc = {name, child, exited: once(child, 'close')}
  running.add(proc)
  const deadline = Date.now() + 120_000
  while (!(await ready(output))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${name} did not start:\n${output.slice(-4000)}`)
    await sleep(100)
  }

  return proc
}

const saysReady = async (output) => output.includes('ready\n')

async function stopAll() {
  for (const proc of running) signalGroup(proc.child.pid, 'SIGTERM')
  await Promise.all([...running].map((proc) => Promise.race([proc.exited, sleep(10_000)])))
  for (const proc of running) signalGroup(proc.child.pid, 'SIGKILL')
  running.clear()
  rmSync(WORK_DIR, {recursive: true, force: true})
}

/** One request; resolves with [status, body]. */
function ask(target) {
  return new Promise((resolve, reject) => {
    const where = target.socket ? {socketPath: target.socket} : {host: '127.0.0.1', port: target.port}
    const req = request({...where, path: '/invocations', method: 'POST', headers: {'content-type': 'application/json'}}, (res) => {
      let body = ''
      res.on('data', (chunk) => (body += chunk))
      res.on('end', () => resolve([res.statusCode, body]))
    })
    req.on('error', reject)
    req.end(BODY)
  })
}

/** CPU time a process used so far, in ms (utime + stime, 100 ticks a second). */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/**
 * Closed-loop load: `connections` keep-alive connections, each sending the next request once the last
 * answer is complete (Content-Length framing). Returns the latencies (ms) and errors.
 */
async function load(target, connections, seconds) {
  const latencies = []
  let errors = 0
  const end = performance.now() + seconds * 1000
  const one = () =>
    new Promise((resolve) => {
      const socket = target.socket ? connect(target.socket) : connect(target.port, '127.0.0.1')
      socket.setNoDelay(true)
      let buffer = Buffer.alloc(0)
      let sentAt = 0
      const send = () => {
        if (performance.now() >= end) {
          socket.destroy()
          resolve()
          return
        }

        sentAt = performance.now()
        socket.write(REQUEST)
      }

      socket.on('connect', send)
      socket.on('data', (chunk) => {
        buffer = buffer.length > 0 ? Buffer.concat([buffer, chunk]) : chunk
        const head = buffer.indexOf('\r\n\r\n')
        if (head < 0) return
        const length = /\r\ncontent-length: *(\d+)/i.exec(buffer.toString('latin1', 0, head))
        if (!length) throw new Error(`no Content-Length in ${buffer.toString('latin1', 0, head)}`)
        const total = head + 4 + Number(length[1])
        if (buffer.length < total) return
        if (buffer.toString('latin1', 9, 12) !== '200') errors++
        latencies.push(performance.now() - sentAt)
        buffer = buffer.subarray(total)
        send()
      })
      socket.on('error', () => {
        errors++
        resolve()
      })
    })
  await Promise.all(Array.from({length: connections}, one))
  return {latencies, errors}
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]

async function benchScorer(kind, opts) {
  const socket = path.join(WORK_DIR, `${kind}.sock`)
  if (kind === 'trivial') {
    await start('trivial', process.execPath, [ROLES, 'trivial', socket], process.env, saysReady)
  } else {
    ensureFixtures()
    const env = toolchainEnv({
      __pyfunc_model_path__: pathToFileURL(fixtureModel('sum')).href,
      MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: '60',
    })
    const args = ['-m', 'uvicorn', '--uds', socket, '--no-access-log', 'mlflow.pyfunc.scoring_server.app:app']
    await start('mlflow scorer', toolchainPython(), args, env, () =>
      ask({socket}).then(
        ([status]) => status === 200,
        () => false,
      ),
    )
  }

  const rawPort = await freePort()
  const raw = await start('raw', process.execPath, [ROLES, 'raw', String(rawPort), socket], process.env, saysReady)
  const routes = [
    {name: 'direct', target: {socket}},
    {name: 'raw pass-through', target: {port: rawPort}, pid: raw.child.pid},
  ]
  for (const build of opts.builds) {
    const port = await freePort()
    const prof = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.join(opts.cpuProf, `${kind}-${build.label}`)}`] : []
    const proc = await start(
      `mlserve ${build.label}`,
      process.execPath,
      [...prof, ROLES, 'mlserve', String(port), socket, build.root],
      process.env,
      saysReady,
    )
    routes.push({name: `mlserve ${build.label}`, target: {port}, pid: proc.child.pid})
  }

  const answers = await Promise.all(routes.map((route) => ask(route.target)))
  for (const [i, [status, body]] of answers.entries()) {
    if (status !== 200 || body !== answers[0][1]) throw new Error(`${routes[i].name} answered ${status} ${body}, not ${answers[0][1]}`)
  }

  console.error(`# ${kind}: every route answers ${answers[0][1]}; warming up`)
  for (const route of routes) await load(route.target, Math.max(...opts.connections), 1)
  const rows = []
  for (const connections of opts.connections) {
    const results = new Map(routes.map((route) => [route.name, []]))
    for (let round = 0; round < opts.rounds; round++) {
      const order = round % 2 === 0 ? routes : [...routes].reverse()
      for (const route of order) {
        const cpuBefore = route.pid ? cpuMs(route.pid) : 0
        const {latencies, errors} = await load(route.target, connections, opts.duration)
        const cpu = route.pid ? cpuMs(route.pid) - cpuBefore : undefined
        const sorted = latencies.sort((a, b) => a - b)
        results.get(route.name).push({requests: sorted.length, errors, p50: percentile(sorted, 50), p99: percentile(sorted, 99), cpu})
      }
    }

    for (const route of routes) {
      const r = results.get(route.name)
      const requests = sum(r.map((x) => x.requests))
      rows.push({
        scorer: kind,
        route: route.name,
        connections,
        rps: requests / (opts.rounds * opts.duration),
        p50: median(r.map((x) => x.p50)),
        p99: median(r.map((x) => x.p99)),
        cpuUsPerRequest: route.pid ? (sum(r.map((x) => x.cpu)) * 1000) / requests : undefined,
        errors: sum(r.map((x) => x.errors)),
      })
    }
  }

  await stopAll()
  mkdirSync(WORK_DIR, {recursive: true})
  return rows
}

function table(rows) {
  const lines = [
    '| scorer | connections | route | req/s | p50 ms | p99 ms | hop CPU µs/req | p50 over raw | CPU over raw |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const row of rows) {
    const raw = rows.find((r) => r.scorer === row.scorer && r.connections === row.connections && r.route === 'raw pass-through')
    const over = row.route.startsWith('mlserve')
    const cells = [
      row.scorer,
      row.connections,
      row.route,
      row.rps.toFixed(0),
      row.p50.toFixed(3),
      row.p99.toFixed(3),
      row.cpuUsPerRequest === undefined ? '' : row.cpuUsPerRequest.toFixed(0),
      over ? `+${(row.p50 - raw.p50).toFixed(3)} ms` : '',
      over ? `+${(row.cpuUsPerRequest - raw.cpuUsPerRequest).toFixed(0)} µs` : '',
    ]
    lines.push(`| ${cells.join(' | ')} |${row.errors > 0 ? ` ${row.errors} errors` : ''}`)
  }

  return lines.join('\n')
}

async function main() {
  const opts = options()
  const rows = []
  for (const kind of opts.scorers) rows.push(...(await benchScorer(kind, opts)))
  console.log(table(rows))
  const file = path.join(REPO_ROOT, 'bench/results', `hop-${new Date().toISOString().replaceAll(':', '-')}.json`)
  mkdirSync(path.dirname(file), {recursive: true})
  writeFileSync(file, JSON.stringify({options: opts, loadavg: os.loadavg(), rows}, null, 2))
  console.error(`# raw numbers: ${file}`)
  await stopAll()
}

runBenchmark(main, stopAll, lifecycle)
