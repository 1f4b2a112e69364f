// The supervisor with a backend that starts its scorers itself, as the preload mode does: a slot's first
// restart has no back-off (a fork is cheap) while the crash-loop breaker still applies, the restart's
// duration is reported, and the backend's own process is stopped with the scorers. A tiny Node HTTP
// server stands in for a scorer (the real forks are exercised in test/e2e/preload.test.ts).
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t, {type Test} from 'tap'

import type {Backend, ScorerMode} from '../../../src/scorer/backend.js'
import {ScorerProcess} from '../../../src/scorer/process.js'
import {Supervisor} from '../../../src/scorer/supervisor.js'

/** Answers every request with 200; exits with code 3 `EXIT_AFTER_MS` after it starts. */
const SCORER = `
const http = require('node:http')
http.createServer((req, res) => res.end('ok')).listen(process.argv[1])
const exitAfter = Number(process.env.EXIT_AFTER_MS || 0)
if (exitAfter > 0) setTimeout(() => process.exit(3), exitAfter)
process.on('SIGTERM', () => process.exit(0))
`

interface Calls {
  stopped: number
  killed: number
}

/** A backend that starts the stand-in itself (its start 1 exits after `exitAfterMs`), in `mode`. */
function selfStarting(mode: ScorerMode, exitAfterMs: number, calls: Calls, everyStart = false): Backend {
  return {
    kind: 'pyfunc',
    server: 'node stand-in',
    readyPath: '/ping',
    async launch() {
      throw new Error('not used: start() starts the scorers')
    },
    async start(slot, io) {
      const exits = everyStart || slot.start === 1
      const env: Record<string, string> = exits ? {EXIT_AFTER_MS: String(exitAfterMs)} : {}
      const command = {
        file: process.execPath,
        args: ['-e', SCORER, slot.socketPath],
        env,
        server: 'node stand-in',
      }
      return {process: await ScorerProcess.start({command, ...io}), endpoint: {kind: 'unix', socketPath: slot.socketPath}}
    },
    mode: () => mode,
    async stop() {
      calls.stopped++
    },
    killNow() {
      calls.killed++
    },
  }
}

async function supervise(t: Test, backend: Backend, crashLimit = 5) {
  const socketDir = await mkdtemp(path.join(tmpdir(), 'mlserve-preload-'))
  const lines: string[] = []
  const restarted: number[] = []
  const sink = {write: () => true}
  const supervisor = new Supervisor({
    backend,
    workers: 1,
    socketDir,
    baseEnv: {PATH: process.env.PATH},
    stdout: sink,
    stderr: sink,
    log: {
      info: (message: string) => lines.push(message),
      warn: (message: string) => lines.push(`warning: ${message}`),
      phase: () => ({done: () => 0}),
    },
    maxConcurrency: 1,
    maxQueue: 1,
    timeoutMs: 5000,
    stuckGraceMs: 60_000,
    livenessIntervalMs: 0,
    stopGraceMs: 1000,
    restart: {initialDelayMs: 400, maxDelayMs: 10_000, crashLimit, crashWindowMs: 60_000},
    events: {onRestarted: (seconds) => restarted.push(seconds)},
  })
  t.teardown(async () => {
    await supervisor.stop(0)
    await rm(socketDir, {recursive: true, force: true})
  })
  return {supervisor, lines, restarted}
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20)) // eslint-disable-line no-await-in-loop
}

t.test('preload mode: the first restart of a slot is at once, and its duration is reported', async (t) => {
  const calls = {stopped: 0, killed: 0}
  const {supervisor: s, lines, restarted} = await supervise(t, selfStarting('preload', 300, calls))
  t.equal(await s.start(new AbortController().signal), true)
  t.equal(s.mode, 'preload')
  await until(() => restarted.length === 1)
  t.same(
    lines.filter((line) => line.startsWith('restarting')),
    ['restarting scorer 0 in 0 ms (failure 1 in a row)'],
  )
  t.ok(restarted[0]! > 0, 'seconds from the failure to the new scorer being ready')
  t.match(lines.join('\n'), /^scorer is ready \(pid \d+\), \d+ ms after its predecessor failed$/m)
  await s.stop(0)
  t.equal(calls.stopped, 1, "stopping the supervisor stops the backend's own process too")
  s.killNow()
  t.equal(calls.killed, 1, "the last-resort kill reaches the backend's own process too")
})

t.test('spawn mode: the first restart keeps its back-off', async (t) => {
  const calls = {stopped: 0, killed: 0}
  const {supervisor: s, lines} = await supervise(t, selfStarting('spawn', 300, calls))
  t.equal(await s.start(new AbortController().signal), true)
  t.equal(s.mode, 'spawn')
  await until(() => lines.some((line) => line.startsWith('restarting')))
  t.same(
    lines.filter((line) => line.startsWith('restarting')),
    ['restarting scorer 0 in 400 ms (failure 1 in a row)'],
  )
})

t.test('preload mode: failures in a row back off after the first, and a crash loop still stops restarting', async (t) => {
  const calls = {stopped: 0, killed: 0}
  const {supervisor: s, lines} = await supervise(t, selfStarting('preload', 200, calls, true), 4)
  t.equal(await s.start(new AbortController().signal), true)
  await until(() => s.unhealthy !== undefined)
  t.same(
    lines.filter((line) => line.startsWith('restarting')),
    [
      'restarting scorer 0 in 0 ms (failure 1 in a row)',
      'restarting scorer 0 in 800 ms (failure 2 in a row)',
      'restarting scorer 0 in 1600 ms (failure 3 in a row)',
    ],
  )
  t.match(s.unhealthy, /^4 scorer failures within 60 s$/)
})
