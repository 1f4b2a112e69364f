// Benchmarks streaming (`"stream": true` to a model with predict_stream), in one run, on the fake LLM of
// test/fixtures/stream_models.py: (1) time to the first event through mlserve against calling
// predict_stream in-process on the same model (p50/p99 over --requests sequential requests); (2)
// --streams concurrent streams of --events events --gap ms apart on one `mlserve serve -w 1`: how many
// complete with every event and [DONE], the wall time, and mlserve's own RSS before and at its peak.
//
//   node bench/stream.js [--requests 200] [--streams 1000] [--events 10] [--gap 100]
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {parseArgs} from 'node:util'

import {REPO_ROOT, ensureFixtures, toolchainEnv, toolchainPython} from '../test/helpers/toolchain.js'

import {freePort, hasExited, median, runBenchmark, signalGroup, spawnTied} from './lib.js'

const {values: args} = parseArgs({
  options: {
    requests: {type: 'string', default: '200'},
    streams: {type: 'string', default: '1000'},
    events: {type: 'string', default: '10'},
    gap: {type: 'string', default: '100'},
  },
})
const WORK_DIR = mkdtempSync(path.join(os.tmpdir(), 'mlserve-bench-stream-'))
const run = {stopping: false}
const live = new Set()
const stopAll = async () => {
  for (const child of live) signalGroup(child.pid, 'SIGKILL')
  live.clear()
}

process.on('exit', () => {
  for (const child of live) signalGroup(child.pid, 'SIGKILL')
  rmSync(WORK_DIR, {recursive: true, force: true})
})

const agent = new http.Agent({keepAlive: true, maxSockets: Infinity})

/** One streamed request: resolves with the time to the first event (ms), the events and whether [DONE] came. */
function stream(url, params) {
  const body = JSON.stringify({inputs: {messages: ['hi']}, params, stream: true})
  return new Promise((resolve, reject) => {
    const started = performance.now()
    let first
    let text = ''
    const req = http.request(`${url}/invocations`, {method: 'POST', agent, headers: {'content-type': 'application/json'}}, (res) => {
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        first ??= performance.now() - started
        text += chunk
      })
      res.on('end', () => {
        const events = text.split('\n\n').filter(Boolean)
        resolve({status: res.statusCode, first, events: events.length - 1, done: events.at(-1) === 'data: [DONE]'})
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

async function main() {
  ensureFixtures()
  const models = path.join(WORK_DIR, 'models')
  execFileSync(toolchainPython(), [path.join(REPO_ROOT, 'test/fixtures/stream_models.py'), models], {env: toolchainEnv(), stdio: 'ignore'})
  const model = path.join(models, 'fakellm')
  const streams = Number(args.streams)
  const port = await freePort()
  const child = spawnTied(
    process.execPath,
    [
      path.join(REPO_ROOT, 'bin/run.js'),
      'serve',
      '-m',
      model,
      '--env-manager',
      'local',
      '--python',
      toolchainPython(),
      '-p',
      String(port),
      '--no-access-log',
      '--max-concurrency',
      String(streams),
      '--max-queue',
      String(streams),
    ],
    {env: toolchainEnv(), stdio: 'ignore'},
  )
  live.add(child)
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 600 && !hasExited(child); i++) {
    const ok = await fetch(`${url}/ping`).then(
      (res) => res.status === 200,
      () => false,
    )
    if (ok) break
    await sleep(250)
  }

  // (1) time to first event, sequential, against the in-process floor.
  const requests = Number(args.requests)
  const firsts = []
  for (let i = 0; i < requests; i++) firsts.push((await stream(url, {n: 2})).first)
  firsts.sort((a, b) => a - b)
  const inProcess = JSON.parse(
    execFileSync(toolchainPython(), [path.join(REPO_ROOT, 'bench/stream_inprocess.py'), model, JSON.stringify({n: 2}), String(requests)], {
      env: toolchainEnv(),
      encoding: 'utf8',
    }),
  )

  // (2) many concurrent slow streams.
  const events = Number(args.events)
  const gap = Number(args.gap) / 1000
  const before = rssMb(child.pid)
  let peak = before
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(child.pid))), 100)
  const started = performance.now()
  const results = await Promise.all(Array.from({length: streams}, () => stream(url, {n: events, delay: gap}).catch((error) => ({error}))))
  const wall = performance.now() - started
  clearInterval(sampler)
  const complete = results.filter((r) => r.status === 200 && r.events === events && r.done).length
  const failures = new Map()
  for (const r of results.filter((r) => !(r.status === 200 && r.events === events && r.done))) {
    const why = r.error ? String(r.error.code ?? r.error.message) : `status ${r.status}, ${r.events} events, [DONE] ${r.done}`
    failures.set(why, (failures.get(why) ?? 0) + 1)
  }

  for (const [why, count] of failures) console.error(`! ${count} stream(s): ${why}`)

  console.log('\n| measure | value |\n| --- | ---: |')
  console.log(
    `| first event through mlserve, p50 / p99 | ${median(firsts).toFixed(2)} ms / ${firsts[Math.floor(requests * 0.99)].toFixed(2)} ms |`,
  )
  console.log(`| first chunk in-process, p50 / p99 | ${inProcess.p50.toFixed(2)} ms / ${inProcess.p99.toFixed(2)} ms |`)
  console.log(`| added by mlserve at p50 | ${(median(firsts) - inProcess.p50).toFixed(2)} ms |`)
  console.log(`| ${streams} streams of ${events} events ${args.gap} ms apart: complete | ${complete} of ${streams} |`)
  console.log(`| wall time (ideal ${((events * gap) / 1).toFixed(1)} s) | ${(wall / 1000).toFixed(1)} s |`)
  console.log(`| mlserve RSS before / peak / growth | ${before.toFixed(0)} / ${peak.toFixed(0)} / ${(peak - before).toFixed(0)} MB |`)
  console.log(
    `\nTargets (issue 25): first event within 2 ms of in-process p50: ${median(firsts) - inProcess.p50 <= 2 ? 'met' : 'missed'}; all ${streams} complete: ${complete === streams ? 'met' : 'missed'}; RSS growth <= 150 MB: ${peak - before <= 150 ? 'met' : 'missed'}.`,
  )
  await stopAll()
}

runBenchmark(main, stopAll, run)
