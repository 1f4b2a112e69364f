// Benchmarks --preload, in one run: the memory of the whole process tree (total PSS) of `mlflow models
// serve -w 1/4`, `mlserve serve -w 1/4` and `mlserve serve --preload -w 1/4`, on the bundled example and
// on a model that holds a large numpy array; and the time from `kill -9` of one scorer to that slot
// serving again (a new scorer ready, warm-up included), spawn against preload.
//
//   node bench/preload.js [--big-mb 500] [--workers 1,4] [--kills 3] [--models iris,big] [--settle 3]
//
// Prints Markdown tables and the ratios the issue targets; raw numbers go to bench/results/preload-<time>.json.
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {parseArgs} from 'node:util'

import {REPO_ROOT, ensureFixtures, ensureToolchain, toolchainBin, toolchainEnv, toolchainPython} from '../test/helpers/toolchain.js'

import {freePort, groupAlive, hasExited, median, processes, runBenchmark, signalGroup, spawnTied} from './lib.js'

const WORK_DIR = mkdtempSync(path.join(os.tmpdir(), 'mlserve-bench-preload-'))
const MLSERVE_BIN = path.join(REPO_ROOT, 'bin', 'run.js')
const IRIS = path.join(REPO_ROOT, 'examples', 'sklearn-iris')
const READY_TIMEOUT_MS = 600_000

const {values: args} = parseArgs({
  options: {
    'big-mb': {type: 'string', default: '500'},
    workers: {type: 'string', default: '1,4'},
    kills: {type: 'string', default: '3'},
    models: {type: 'string', default: 'iris,big'},
    settle: {type: 'string', default: '3'},
  },
})
const WORKERS = args.workers.split(',').map(Number)
const KILLS = Number(args.kills)
const SETTLE_S = Number(args.settle)

const run = {stopping: false}
const live = new Set()

/** A pyfunc model whose load_context reads an array of `mb` MB into memory (np.load, no mmap). */
function saveBigModel(mb) {
  const dir = path.join(WORK_DIR, `big-${mb}mb`)
  const script = path.join(WORK_DIR, 'save_big.py')
  writeFileSync(
    script,
    `import sys, numpy as np, pandas as pd, mlflow
class Big(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.weights = np.load(context.artifacts["weights"])
    def predict(self, context, model_input, params=None):
        return [float(self.weights[: len(model_input)].sum())]
weights = sys.argv[2]
np.save(weights, np.random.default_rng(0).random(int(sys.argv[3]) * 1024 * 1024 // 8))
mlflow.pyfunc.save_model(sys.argv[1], python_model=Big(), artifacts={"weights": weights}, input_example=pd.DataFrame({"x": [1.0]}))
`,
  )
  execFileSync(toolchainPython(), [script, dir, path.join(WORK_DIR, 'weights.npy'), String(mb)], {
    env: toolchainEnv(),
    cwd: WORK_DIR,
    stdio: 'inherit',
  })
  rmSync(path.join(WORK_DIR, 'weights.npy'), {force: true})
  return dir
}

/** Total PSS (kB) of `root` and every descendant, from /proc/<pid>/smaps_rollup. */
function treePss(root) {
  const table = processes()
  const tree = new Set([root])
  for (let grew = true; grew;) {
    grew = false
    for (const p of table) {
      if (!tree.has(p.pid) && tree.has(p.ppid) && p.state !== 'Z') {
        tree.add(p.pid)
        grew = true
      }
    }
  }

  let kb = 0
  for (const pid of tree) {
    try {
      const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
      if (match) kb += Number(match[1])
    } catch {} // gone meanwhile
  }

  return {kb, processes: tree.size}
}

async function get(url) {
  try {
    const res = await fetch(url, {signal: AbortSignal.timeout(5000)})
    return {status: res.status, body: await res.text()}
  } catch {
    return {status: 0, body: ''}
  }
}

/** Starts one contender on a free port; its output is kept for the log regexes. */
async function start(contender, model, workers) {
  const port = await freePort()
  const env = toolchainEnv()
  const argv =
    contender === 'mlflow'
      ? [
          path.join(toolchainBin(), 'mlflow'),
          ['models', 'serve', '-m', model, '--env-manager', 'local', '-h', '127.0.0.1', '-p', String(port), '-w', String(workers)],
        ]
      : [
          process.execPath,
          [
            MLSERVE_BIN,
            'serve',
            '-m',
            model,
            '--env-manager',
            'local',
            '--python',
            toolchainPython(),
            '-p',
            String(port),
            '-w',
            String(workers),
            '--no-access-log',
          ].concat(contender === 'mlserve --preload' ? ['--preload'] : []),
        ]
  const child = spawnTied(argv[0], argv[1], {env, stdio: ['ignore', 'ignore', 'pipe']})
  live.add(child)
  let stderr = ''
  child.stderr.on('data', (chunk) => {
    stderr += chunk.toString()
  })
  const server = {child, url: `http://127.0.0.1:${port}`, stderr: () => stderr, contender, workers}
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (hasExited(child) || run.stopping) throw new Error(`${contender} exited before it was ready:\n${stderr}`)

    if (contender === 'mlflow' ? (await get(`${server.url}/ping`)).status === 200 : readyScorers(await get(`${server.url}/metrics`)) >= workers)
      return server

    await sleep(200)
  }

  throw new Error(`${contender} not ready in time:\n${stderr}`)
}

const readyScorers = (metrics) => Number(/^mlserve_scorers\{state="ready"\} (\d+)/m.exec(metrics.body)?.[1] ?? 0)
const restartsObserved = (metrics) => Number(/^mlserve_scorer_restart_seconds_count (\d+)/m.exec(metrics.body)?.[1] ?? -1)

async function stop(server) {
  signalGroup(server.child.pid, 'SIGTERM')
  for (let i = 0; i < 150 && groupAlive(server.child.pid); i++) await sleep(100)
  signalGroup(server.child.pid, 'SIGKILL')
  live.delete(server.child)
}

/** Predicts the model's example a few times (every worker has run once, as under traffic), then lets memory settle. */
async function exercise(server, model) {
  const body = readFileSync(path.join(model, 'serving_input_example.json'))
  for (let i = 0; i < 4 * server.workers; i++) {
    await fetch(`${server.url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json'}, body}).then((res) =>
      res.arrayBuffer(),
    )
  }

  // Until the tree's memory stops growing (mlflow's uvicorn workers load one after another).
  let last = 0
  for (let steady = 0; steady < SETTLE_S;) {
    await sleep(1000)
    const {kb} = treePss(server.child.pid)
    steady = Math.abs(kb - last) < 0.01 * kb ? steady + 1 : 0
    last = kb
  }
}

/** The pid now serving each slot, from mlserve's log. */
function slotPids(stderr) {
  const pids = new Map()
  for (const match of stderr.matchAll(/start scorer \([^)]*\): pid (\d+)|scorer (\d+) started \(pid (\d+)/g)) {
    if (match[1]) pids.set(0, Number(match[1]))
    else pids.set(Number(match[2]), Number(match[3]))
  }

  return pids
}

/** kill -9 of one scorer (a different slot each time: no back-off from an earlier failure) until the slot serves again. */
async function restartTimes(server) {
  const times = []
  for (let slot = 0; slot < Math.min(KILLS, server.workers); slot++) {
    const before = restartsObserved(await get(`${server.url}/metrics`))
    const pid = slotPids(server.stderr()).get(slot)
    const killedAt = performance.now()
    process.kill(pid, 'SIGKILL')
    while (restartsObserved(await get(`${server.url}/metrics`)) === before) {
      if (performance.now() - killedAt > 120_000 || run.stopping) throw new Error(`slot ${slot} did not serve again:\n${server.stderr()}`)
      await sleep(5)
    }

    times.push(performance.now() - killedAt)
    await sleep(500)
  }

  return times
}

async function main() {
  ensureToolchain()
  ensureFixtures()
  const models = []
  for (const name of args.models.split(',')) {
    if (name === 'iris') models.push({name: 'iris (bundled example)', dir: IRIS})
    else if (name === 'big') models.push({name: `${args['big-mb']} MB of numpy weights`, dir: saveBigModel(Number(args['big-mb']))})
  }

  const results = []
  for (const model of models) {
    for (const contender of ['mlflow', 'mlserve', 'mlserve --preload']) {
      for (const workers of WORKERS) {
        const server = await start(contender, model.dir, workers)
        try {
          await exercise(server, model.dir)
          const pss = treePss(server.child.pid)
          const row = {model: model.name, contender, workers, pssMb: pss.kb / 1024, processes: pss.processes}
          if (contender !== 'mlflow' && workers > 1) row.restartMs = await restartTimes(server)
          console.error(`# ${JSON.stringify(row)}`)
          results.push(row)
        } finally {
          await stop(server)
        }
      }
    }
  }

  const lines = [
    '| model | server | -w | processes | total PSS (MB) | vs its -w 1 | kill -9 → serving again (median ms) |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const row of results) {
    const base = results.find((other) => other.model === row.model && other.contender === row.contender && other.workers === 1)
    const ratio = base && row.workers > 1 ? `${(row.pssMb / base.pssMb).toFixed(2)}x` : ''
    const restart = row.restartMs ? String(Math.round(median(row.restartMs))) : ''
    lines.push(`| ${row.model} | ${row.contender} | ${row.workers} | ${row.processes} | ${row.pssMb.toFixed(0)} | ${ratio} | ${restart} |`)
  }

  console.log(lines.join('\n'))
  for (const model of models) {
    const one = results.find((r) => r.model === model.name && r.contender === 'mlserve' && r.workers === 1)
    const preload = results.find((r) => r.model === model.name && r.contender === 'mlserve --preload' && r.workers === Math.max(...WORKERS))
    if (one && preload)
      console.log(
        `\n${model.name}: --preload -w ${preload.workers} uses ${(preload.pssMb / one.pssMb).toFixed(2)}x the memory of mlserve -w 1 (target: at most 1.5x)`,
      )
  }

  const dir = path.join(REPO_ROOT, 'bench', 'results')
  mkdirSync(dir, {recursive: true})
  const file = path.join(dir, `preload-${new Date().toISOString().replaceAll(':', '-')}.json`)
  writeFileSync(file, JSON.stringify({machine: {cpus: os.cpus().length, memoryMb: os.totalmem() / 2 ** 20}, args, results}, null, 2))
  console.error(`# raw numbers: ${file}`)
}

runBenchmark(
  async () => {
    try {
      await main()
    } finally {
      rmSync(WORK_DIR, {recursive: true, force: true})
    }
  },
  async () => {
    await Promise.all([...live].map(async (child) => stop({child})))
    rmSync(WORK_DIR, {recursive: true, force: true})
  },
  run,
)
