// Benchmarks several models from one mlserve (issue 27), in one run, on N scikit-learn models saved by the
// bench into a temporary directory (half in the test toolchain's environment, half in a virtualenv mlserve
// builds: two environments): (a) N `mlflow models serve -w 1` started one after another, as a user does
// today, against (b) one `mlserve serve` with all N: total PSS of every process tree, and the time until all
// N answer; the cold load of one model into a running server (--load lazy, first request of each model);
// the hot request p50 through /models/<name>/invocations against single-model mlserve; and a churn run
// (requests spread over every model with --max-loaded N/4 and a --max-memory cap): 200s, 503s, evictions,
// the largest total PSS seen against the cap.
//
//   node bench/multi.js [--n 20] [--hot 300] [--churn-seconds 30] [--skip-mlflow]     (or MLSERVE_BENCH_MODELS=N)
//
// Prints a Markdown table and the targets; raw numbers go to bench/results/multi-<time>.json.
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {parseArgs} from 'node:util'

import {REPO_ROOT, toolchainBin, toolchainPython} from '../test/helpers/toolchain.js'

import {freePort, median, runBenchmark, signalGroup} from './lib.js'
import {call, live, metric, mib, percentile, run, saveModels, spawnServer, stop, sumMetric, treePss, until} from './multi-lib.js'

const {values: args} = parseArgs({
  options: {
    n: {type: 'string', default: process.env.MLSERVE_BENCH_MODELS ?? '20'},
    hot: {type: 'string', default: '300'},
    'churn-seconds': {type: 'string', default: '30'},
    'skip-mlflow': {type: 'boolean', default: false},
  },
})
const N = Number(args.n)
const WORK_DIR = mkdtempSync(path.join(os.tmpdir(), 'mlserve-bench-multi-'))
const MLSERVE_BIN = path.join(REPO_ROOT, 'bin', 'run.js')
const IRIS = path.join(REPO_ROOT, 'examples', 'sklearn-iris')
const names = Array.from({length: N}, (_, i) => `m${String(i).padStart(2, '0')}`)

async function mlserve(extra) {
  const port = await freePort()
  const argv = [MLSERVE_BIN, 'serve', '--env-manager', 'local', '--python', toolchainPython(), '-p', String(port), '--no-access-log', ...extra]
  const server = {...spawnServer(process.execPath, argv), url: `http://127.0.0.1:${port}`}
  await until('listening', async () => /listening on/.test(server.stderr()), server)
  return server
}

const allAnswer = (url, list) => async () =>
  (await Promise.all(list.map(async (name) => (await call(`${url}/models/${name}/invocations`)).status))).every((s) => s === 200)

async function hot(url, count) {
  const times = []
  for (let i = 0; i < count + 20; i++) {
    const result = await call(url)
    if (result.status !== 200) throw new Error(`hot request: ${result.status} ${result.text}`)
    if (i >= 20) times.push(result.ms)
  }

  return median(times)
}

async function main() {
  const results = {n: N, environments: 2}
  console.error(`# saving ${N} scikit-learn models into ${WORK_DIR}`)
  const file = saveModels(WORK_DIR, IRIS, names)

  if (!args['skip-mlflow']) {
    console.error(`# (a) ${N} x mlflow models serve -w 1, one after another`)
    const began = performance.now()
    const servers = []
    for (const name of names) {
      const port = await freePort()
      const argv = [
        'models',
        'serve',
        '-m',
        path.join(WORK_DIR, name),
        '--env-manager',
        'local',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-w',
        '1',
      ]
      const server = {...spawnServer(path.join(toolchainBin(), 'mlflow'), argv), url: `http://127.0.0.1:${port}`}
      servers.push(server)
      await until(`mlflow ${name}`, async () => (await call(`${server.url}/invocations`)).status === 200, server)
    }

    results.a = {allAnswerSeconds: (performance.now() - began) / 1000, pssBytes: treePss(servers.map((s) => s.child.pid))}
    console.error(`#   all answer after ${results.a.allAnswerSeconds.toFixed(1)} s; PSS ${mib(results.a.pssBytes)}`)
    await Promise.all(servers.map(stop))
  }

  console.error(`# (b) one mlserve with all ${N}`)
  {
    const began = performance.now()
    const server = await mlserve(['--models', file])
    await until('all answer', allAnswer(server.url, names), server)
    const allAnswerSeconds = (performance.now() - began) / 1000
    await sleep(3000)
    const listed = (await (await fetch(`${server.url}/models`)).json()).models
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    const perModel = listed.map((m) => m.memory_bytes ?? 0)
    results.b = {
      allAnswerSeconds,
      pssBytes: treePss([server.child.pid]),
      modelsMemoryBytes: metric(metrics, 'mlserve_models_memory_bytes'),
      perModelMeanBytes: perModel.reduce((s, v) => s + v, 0) / perModel.length,
      environments: new Set(listed.map((m) => m.environment?.key ?? 'local')).size,
    }
    results.b.sharedBytes = results.b.modelsMemoryBytes - perModel.reduce((s, v) => s + v, 0)
    console.error(
      `#   all answer after ${allAnswerSeconds.toFixed(1)} s; PSS ${mib(results.b.pssBytes)} (${results.b.environments} environments)`,
    )
    results.hot = {multiP50Ms: await hot(`${server.url}/models/${names[0]}/invocations`, Number(args.hot))}
    await stop(server)
  }

  console.error('# hot requests: single-model mlserve')
  {
    const server = await mlserve(['-m', path.join(WORK_DIR, names[0])])
    await until('ready', async () => (await call(`${server.url}/invocations`)).status === 200, server)
    results.hot.singleP50Ms = await hot(`${server.url}/invocations`, Number(args.hot))
    await stop(server)
  }

  console.error('# cold loads: --load lazy, the first request of each model (each environment warmed by one model first)')
  {
    const server = await mlserve(['--models', file, '--load', 'lazy'])
    await until('prepared', async () => /ready: serving/.test(server.stderr()), server)
    for (const name of names.slice(0, 2)) await call(`${server.url}/models/${name}/invocations`)
    const firsts = []
    for (const name of names.slice(2, 22)) {
      firsts.push((await call(`${server.url}/models/${name}/invocations`)).ms)
      // What N/4 loaded models and their loaders take (the churn run's --max-memory, +10 %).
      if (firsts.length + 2 === Math.max(1, Math.floor(N / 4))) {
        await sleep(2500)
        results.memoryAtQuarter = metric(await (await fetch(`${server.url}/metrics`)).text(), 'mlserve_models_memory_bytes')
      }
    }

    const logged = [...server.stderr().matchAll(/: loaded in (\d+) ms/g)].slice(2).map((m) => Number(m[1]))
    results.cold = {
      loads: firsts.length,
      firstRequestP50Ms: median(firsts),
      firstRequestP99Ms: percentile(firsts, 99),
      loadP50Ms: median(logged),
      loadP99Ms: percentile(logged, 99),
    }
    await stop(server)
  }

  const maxLoaded = Math.max(1, Math.floor(N / 4))
  const cap = Math.round(
    results.memoryAtQuarter ? results.memoryAtQuarter * 1.1 : results.b.sharedBytes + maxLoaded * results.b.perModelMeanBytes * 1.1,
  )
  console.error(`# churn: --max-loaded ${maxLoaded} --max-memory ${cap} for ${args['churn-seconds']} s, 4 clients`)
  {
    const server = await mlserve(['--models', file, '--max-loaded', String(maxLoaded), '--max-memory', String(cap)])
    await until('ready', async () => /ready: serving/.test(server.stderr()), server)
    const counts = {ok: 0, unavailable: 0, withRetryAfter: 0, other: 0, wrong: 0}
    let peak = 0
    let peakCounted = 0
    const end = Date.now() + Number(args['churn-seconds']) * 1000
    const client = async () => {
      while (Date.now() < end && !run.stopping) {
        const name = names[Math.floor(Math.random() * N)]
        const result = await call(`${server.url}/models/${name}/invocations`)
        if (result.status === 200) counts.ok++
        else if (result.status === 503) {
          counts.unavailable++
          if (result.retryAfter) counts.withRetryAfter++
        } else counts.other++
        if (result.status === 200 && !/^\{"predictions": \[\d\]\}$/.test(result.text)) counts.wrong++
      }
    }

    const sampler = (async () => {
      while (Date.now() < end) {
        peak = Math.max(peak, treePss([server.child.pid]))
        const text = await (await fetch(`${server.url}/metrics`)).text()
        peakCounted = Math.max(peakCounted, metric(text, 'mlserve_models_memory_bytes'))
        await sleep(500)
      }
    })()
    await Promise.all([client(), client(), client(), client(), sampler])
    const text = await (await fetch(`${server.url}/metrics`)).text()
    results.churn = {
      maxLoaded,
      capBytes: cap,
      ...counts,
      evictions: sumMetric(text, 'mlserve_model_evictions_total'),
      loads: sumMetric(text, 'mlserve_model_loads_total'),
      peakTreePssBytes: peak,
      peakCountedBytes: peakCounted,
    }
    await stop(server)
  }

  mkdirSync(path.join(REPO_ROOT, 'bench', 'results'), {recursive: true})
  writeFileSync(path.join(REPO_ROOT, 'bench', 'results', `multi-${Date.now()}.json`), JSON.stringify(results, null, 2))
  report(results)
  rmSync(WORK_DIR, {recursive: true, force: true})
}

function report(r) {
  const lines = [
    `| ${r.n} scikit-learn models, 2 environments | (a) ${r.n} x mlflow models serve -w 1 | (b) one mlserve |`,
    '| --- | --- | --- |',
    `| total PSS | ${r.a ? mib(r.a.pssBytes) : 'skipped'} | ${mib(r.b.pssBytes)} (models and loaders: ${mib(r.b.modelsMemoryBytes)}, ${mib(r.b.perModelMeanBytes)} a model, ${mib(r.b.sharedBytes)} shared loaders) |`,
    `| time until all ${r.n} answer | ${r.a ? r.a.allAnswerSeconds.toFixed(1) + ' s' : 'skipped'} | ${r.b.allAnswerSeconds.toFixed(1)} s |`,
    `| cold load (lazy, ${r.cold.loads} loads) p50 / p99 | - | load ${r.cold.loadP50Ms} / ${r.cold.loadP99Ms} ms; first request ${r.cold.firstRequestP50Ms.toFixed(0)} / ${r.cold.firstRequestP99Ms.toFixed(0)} ms |`,
    `| hot request p50 | single-model mlserve ${r.hot.singleP50Ms.toFixed(2)} ms | /models/<name>/invocations ${r.hot.multiP50Ms.toFixed(2)} ms |`,
    `| churn (--max-loaded ${r.churn.maxLoaded}, --max-memory ${mib(r.churn.capBytes)}) | - | ${r.churn.ok} ok, ${r.churn.unavailable} 503 (${r.churn.withRetryAfter} with Retry-After), ${r.churn.other} other, ${r.churn.wrong} wrong answers; ${r.churn.loads} loads, ${r.churn.evictions} evictions; peak counted ${mib(r.churn.peakCountedBytes)}, peak tree PSS ${mib(r.churn.peakTreePssBytes)} |`,
  ]
  console.log(lines.join('\n'))
  if (r.a) console.log(`\nmemory (b)/(a): ${(r.b.pssBytes / r.a.pssBytes).toFixed(3)} (target <= 0.2)`)
  console.log(
    `cold load p50: ${r.cold.loadP50Ms} ms (target <= 500); hot p50 difference: ${(r.hot.multiP50Ms - r.hot.singleP50Ms).toFixed(3)} ms (target <= 0.2)`,
  )
}

runBenchmark(
  main,
  async () => {
    for (const child of live) signalGroup(child.pid, 'SIGKILL')
    rmSync(WORK_DIR, {recursive: true, force: true})
  },
  run,
)
