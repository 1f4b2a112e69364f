// Benchmarks `--batch` on requests that cannot merge (issue 24: "`--batch` on the LLM case no slower than
// without it"), in one run: saves a model whose predict sleeps --seconds and which takes MLflow's unified
// LLM input ({"messages": [...]}, bench/llm_model.py), starts `mlflow models serve`, `mlserve serve` and
// `mlserve serve --batch` on it side by side (all -w 1, --env-manager local, the toolchain's interpreter),
// checks that the three answer one request with the same status and bytes, then for --rounds rounds, in
// alternating order, fires --concurrency requests at once at each server and times until all of them
// answered. Prints a Markdown table (median/min/max seconds per server, the ratios and the target) and
// writes the raw numbers to bench/results/llm-batch-<time>.json.
//
//   node bench/llm-batch.js [--seconds 1] [--concurrency 8] [--rounds 3]   # after npm run build
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {REPO_ROOT, ensureToolchain, toolchainBin, toolchainEnv, toolchainPython} from '../test/helpers/toolchain.js'

import {median, runBenchmark} from './lib.js'
import {serverFleet} from './servers.js'

const READY_TIMEOUT_MS = 180_000
const STOP_GRACE_MS = 15_000
const BODY = '{"messages": [{"role": "user", "content": "hi"}]}'
/** The target of issue 24: `--batch` no slower than mlserve without it, within 5 % for noise. */
const TARGET_RATIO = 1.05
/** The model and the server logs; removed on exit. */
const WORK_DIR = mkdtempSync(path.join(os.tmpdir(), 'mlserve-bench-llm-'))

function options() {
  const {values} = parseArgs({
    options: {
      seconds: {type: 'string', default: '1'},
      concurrency: {type: 'string', default: '8'},
      rounds: {type: 'string', default: '3'},
    },
  })
  const number = (name, integer) => {
    const value = Number(values[name])
    if (!(value > 0) || (integer && !Number.isInteger(value))) {
      throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, not ${values[name]}`)
    }
    return value
  }
  return {seconds: number('seconds', false), concurrency: number('concurrency', true), rounds: number('rounds', true)}
}

const {startServer, stopAll, lifecycle} = serverFleet(WORK_DIR, {readyTimeoutMs: READY_TIMEOUT_MS, stopGraceMs: STOP_GRACE_MS})

// ---- requests --------------------------------------------------------------------------------------

/** One connection per request in flight (keep-alive between rounds), as N separate clients would have. */
const agent = new http.Agent({keepAlive: true, maxSockets: Infinity})

/** POST /invocations: resolves with the status, the body's bytes and the time it took (ms). */
function invoke(url, timeoutMs) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const req = http.request(
      `${url}/invocations`,
      {method: 'POST', agent, headers: {'content-type': 'application/json'}, timeout: timeoutMs},
      (res) => {
        const chunks = []
        res.on('data', (chunk) => chunks.push(chunk))
        res.on('end', () => resolve({status: res.statusCode, bytes: Buffer.concat(chunks), ms: performance.now() - started}))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(BODY)
  })
}

/** N requests at once; the wall time until the last answered, every status, and whether each body is the reference. */
async function burst(server, opts, reference) {
  const timeoutMs = (opts.concurrency * opts.seconds * 2 + 60) * 1000
  const started = performance.now()
  const answers = await Promise.all(Array.from({length: opts.concurrency}, () => invoke(server.url, timeoutMs).catch((error) => ({error}))))
  const seconds = (performance.now() - started) / 1000
  return {
    seconds,
    statuses: answers.map((a) => a.status ?? String(a.error.message)),
    latencies: answers.map((a) => (a.ms === undefined ? null : a.ms / 1000)),
    sameBytes: answers.filter((a) => a.bytes?.equals(reference)).length,
    loadAverage: os.loadavg()[0],
  }
}

// ---- the benchmark --------------------------------------------------------------------------------

const fmt = (n, digits = 2) => n.toFixed(digits)
const LABELS = {mlflow: '`mlflow models serve`', mlserve: '`mlserve serve`', batch: '`mlserve serve --batch`'}

function summarize(rounds) {
  const seconds = rounds.map((r) => r.seconds)
  return {median: median(seconds), min: Math.min(...seconds), max: Math.max(...seconds), rounds}
}

async function main() {
  const opts = options()
  ensureToolchain()
  const model = path.join(WORK_DIR, 'slow-llm')
  try {
    execFileSync(toolchainPython(), [path.join(REPO_ROOT, 'bench/llm_model.py'), model, String(opts.seconds)], {
      env: toolchainEnv(),
      encoding: 'utf8',
      stdio: 'pipe',
    })
  } catch (error) {
    throw new Error(`saving the model failed:\n${error.stderr ?? error.message}`)
  }

  const mlserveArgs = (port) => [
    path.join(REPO_ROOT, 'bin/run.js'),
    'serve',
    '-m',
    model,
    '--env-manager',
    'local',
    '--python',
    toolchainPython(),
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-w',
    '1',
  ]
  console.error(`# starting mlflow models serve, mlserve serve and mlserve serve --batch on a model that takes ${opts.seconds} s`)
  const servers = await Promise.all([
    startServer('mlflow', path.join(toolchainBin(), 'mlflow'), (port) => [
      'models',
      'serve',
      '-m',
      model,
      '--env-manager',
      'local',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-w',
      '1',
    ]),
    startServer('mlserve', process.execPath, mlserveArgs),
    startServer('batch', process.execPath, (port) => [...mlserveArgs(port), '--batch']),
  ])

  // One request each: the same status and bytes from all three (mlflow's own answer is the reference).
  const timeoutMs = (opts.seconds * 2 + 60) * 1000
  const first = await Promise.all(servers.map((server) => invoke(server.url, timeoutMs)))
  const reference = first[0].bytes
  for (const [i, answer] of first.entries()) {
    if (answer.status !== 200 || first[0].status !== 200 || !answer.bytes.equals(reference)) {
      throw new Error(
        `the three servers must answer 200 with the same bytes: mlflow ${first[0].status} ${reference} vs ${servers[i].name} ${answer.status} ${answer.bytes}`,
      )
    }
  }
  const mlflowVersion = await fetch(`${servers[0].url}/version`).then((res) => res.text())
  console.error(`# all three answer ${reference}; one unrecorded burst of ${opts.concurrency} each to warm up`)
  for (const server of servers) await burst(server, opts, reference)

  const samples = new Map(servers.map((server) => [server.name, []]))
  for (let round = 0; round < opts.rounds; round++) {
    for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
      const sample = await burst(server, opts, reference)
      const bad = sample.statuses.filter((status) => status !== 200)
      if (bad.length > 0) console.error(`! ${server.name} round ${round + 1}: ${bad.length} not 200: ${[...new Set(bad)].join(', ')}`)
      if (sample.sameBytes < opts.concurrency)
        console.error(`! ${server.name} round ${round + 1}: ${opts.concurrency - sample.sameBytes} other bodies`)
      console.error(`# round ${round + 1} ${server.name}: ${fmt(sample.seconds)} s (load average ${fmt(sample.loadAverage)})`)
      samples.get(server.name).push(sample)
    }
  }
  await stopAll()

  const results = Object.fromEntries([...samples].map(([name, rounds]) => [name, summarize(rounds)]))
  const {mlflow, mlserve, batch} = results
  const batchRatio = batch.median / mlserve.median
  const all = [...samples.values()].flat()
  const failed = all.reduce((n, r) => n + r.statuses.filter((status) => status !== 200).length, 0)
  const loads = all.map((r) => r.loadAverage)

  console.log(
    `\n${opts.concurrency} concurrent requests, ${opts.seconds} s per prediction, requests that cannot merge (\`${BODY}\`), -w 1, ${opts.rounds} rounds:\n`,
  )
  console.log('| server | median s | min s | max s | not 200 |\n| --- | ---: | ---: | ---: | ---: |')
  for (const [name, r] of Object.entries(results)) {
    const not200 = r.rounds.reduce((n, round) => n + round.statuses.filter((status) => status !== 200).length, 0)
    console.log(`| ${LABELS[name]} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${not200} |`)
  }
  console.log(
    `\nRatios of the medians: \`--batch\` / mlserve ${fmt(batchRatio, 3)}x; mlserve / mlflow ${fmt(mlserve.median / mlflow.median, 3)}x.`,
  )
  console.log(
    `Target (issue 24): \`--batch\` no slower than without it (ratio <= ${TARGET_RATIO}): ${batchRatio <= TARGET_RATIO && failed === 0 ? 'met' : 'missed'}${failed > 0 ? ` (${failed} requests not 200)` : ''}.`,
  )
  console.log(
    `Machine: ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model}), Node ${process.version}, mlflow ${mlflowVersion}; load average ${fmt(Math.min(...loads))}-${fmt(Math.max(...loads))} during the rounds.`,
  )

  const resultsDir = path.join(REPO_ROOT, 'bench/results')
  mkdirSync(resultsDir, {recursive: true})
  const file = path.join(resultsDir, `llm-batch-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  const machine = {nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version, mlflow: mlflowVersion}
  writeFileSync(
    file,
    `${JSON.stringify({date: new Date().toISOString(), machine, settings: {...opts, body: BODY}, answer: reference.toString(), results, batchRatio}, null, 2)}\n`,
  )
  console.error(`# results written to ${path.relative(REPO_ROOT, file)}`)
}

runBenchmark(main, stopAll, lifecycle)
