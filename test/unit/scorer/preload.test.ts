// The preload backend (scorer/preload.ts) with a stand-in for templates/python/preload.py that speaks its
// control protocol (loaded / unsafe / forked / exited, JSON lines on a Unix socket) and forks tiny Node
// HTTP servers: scorers come from the loaded process, an unsafe load falls back to spawn, a load that
// fails or outlasts --load-timeout is a clear error, and a dead loader takes its scorers along. The real
// loader with a real model is exercised by test/e2e/preload.test.ts.
import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {request} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t, {type Test} from 'tap'

import type {Logger} from '../../../src/log.js'
import type {Backend, StartIo} from '../../../src/scorer/backend.js'
import {preloadBackend} from '../../../src/scorer/preload.js'

/** A scorer: answers every request with its pid; exits 0 on SIGTERM. */
const SCORER = `
const http = require('node:http')
http.createServer((req, res) => res.end(String(process.pid))).listen(process.argv[1])
process.on('SIGTERM', () => process.exit(0))
`

/** The stand-in loader: STANDIN says how its load goes (loaded, unsafe, crash, hang). */
const LOADER = `
const net = require('node:net')
const {spawn} = require('node:child_process')
const mode = process.env.STANDIN
if (mode === 'crash') {
  process.stderr.write("ModuleNotFoundError: No module named 'sklearn'\\n")
  process.exit(1)
}
const channel = net.connect(process.argv[3])
const send = (message) => channel.write(JSON.stringify(message) + '\\n')
if (mode === 'loaded') send({event: 'loaded'})
// Like preload.py: says why it cannot fork, and exits.
if (mode === 'unsafe') channel.end(JSON.stringify({event: 'unsafe', reason: 'the model opened a socket while loading (fd 7)'}) + '\\n', () => process.exit(0))
let buffered = ''
channel.on('data', (data) => {
  buffered += data
  for (let end = buffered.indexOf('\\n'); end >= 0; end = buffered.indexOf('\\n')) {
    const {op, id, socket} = JSON.parse(buffered.slice(0, end))
    buffered = buffered.slice(end + 1)
    if (op !== 'fork') continue
    const child = spawn(process.execPath, ['-e', ${JSON.stringify(SCORER)}, socket], {stdio: 'ignore'})
    child.on('spawn', () => send({event: 'forked', id, pid: child.pid}))
    child.on('exit', (code, signal) => send({event: 'exited', pid: child.pid, code, signal}))
  }
})
channel.on('end', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
`

interface Setup {
  backend: Backend
  lines: string[]
  io: StartIo
  slot(n: number): {index: number; start: number; socketPath: string; freePort: () => Promise<number>}
}

async function setup(t: Test, standIn: string, loadTimeoutMs = 0): Promise<Setup> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mlserve-preload-unit-'))
  const loader = path.join(dir, 'loader.cjs')
  await writeFile(loader, `#!${process.execPath}\n${LOADER}`)
  await chmod(loader, 0o755)
  const lines: string[] = []
  const log: Logger = {
    info: (message) => lines.push(message),
    warn: (message) => lines.push(`warning: ${message}`),
    phase: () => ({done: () => 0}),
  }
  const spawn: Backend = {
    kind: 'pyfunc',
    server: 'node stand-in',
    readyPath: '/ping',
    async launch(slot) {
      const command = {file: process.execPath, args: ['-e', SCORER, slot.socketPath], env: {}, server: 'node stand-in'}
      return {command, endpoint: {kind: 'unix', socketPath: slot.socketPath}}
    },
  }
  const backend = preloadBackend({spawn, python: loader, modelDir: dir, timeoutSeconds: 60, loadTimeoutMs, log})
  const sink = {write: () => true}
  const io: StartIo = {baseEnv: {PATH: process.env.PATH, STANDIN: standIn}, stdout: sink, stderr: sink, label: 'scorer'}
  const started: Array<{killNow(): void}> = []
  const start = backend.start!
  const tracked: Backend = {
    ...backend,
    async start(slot, startIo) {
      const scorer = await start(slot, startIo)
      started.push(scorer.process)
      return scorer
    },
  }
  t.teardown(async () => {
    for (const scorer of started) scorer.killNow()
    backend.killNow?.()
    await rm(dir, {recursive: true, force: true})
  })
  return {
    backend: tracked,
    lines,
    io,
    slot: (n) => ({index: 0, start: n, socketPath: path.join(dir, `s0-${n}.sock`), freePort: async () => 0}),
  }
}

/** What the scorer on `socketPath` answers (its pid), once it listens. */
async function ask(socketPath: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      // eslint-disable-next-line no-await-in-loop -- each attempt waits for the one before
      return await get(socketPath)
    } catch (error) {
      if (attempt >= 200 || (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      // eslint-disable-next-line no-await-in-loop
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

async function get(socketPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({socketPath, path: '/ping'}, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => resolve(Number(body)))
    })
      .on('error', reject)
      .end()
  })
}

t.test('scorers are forked from the process that loaded the model, which reports their exit', async (t) => {
  const {backend, lines, io, slot} = await setup(t, 'loaded')
  const first = await backend.start!(slot(1), io)
  t.equal(backend.mode!(), 'preload')
  t.match(lines.join('\n'), /--preload: the model is loaded once in pid \d+ \(start 1\); scorers are forked from it/)
  t.equal(await ask(slot(1).socketPath), first.process.pid, 'the fork serves on the slot socket')
  const second = await backend.start!(slot(2), io)
  t.not(second.process.pid, first.process.pid, 'each start is a fork of its own')
  t.equal(lines.filter((line) => line.includes('loaded once')).length, 1, 'the model is loaded once for both')
  t.same(await first.process.stop(5000), {exitCode: 0, signal: null}, 'stopped: its exit as the loader reports it')
  t.equal(second.process.running, true, 'the other fork serves on')
  await second.process.stop(5000)
  await backend.stop!(5000, undefined)
})

t.test('a load that cannot fork safely falls back to spawn, with a warning naming why', async (t) => {
  const {backend, lines, io, slot} = await setup(t, 'unsafe')
  const started = await backend.start!(slot(1), io)
  t.equal(backend.mode!(), 'spawn')
  t.match(lines.join('\n'), /warning: --preload: the model opened a socket while loading \(fd 7\); falling back to the spawn mode/)
  t.equal(await ask(slot(1).socketPath), started.process.pid, 'the scorer was spawned as in the spawn mode')
  await started.process.stop(5000)
})

t.test('the process loading the model dying first is SCORER_START_FAILED, with its last line', async (t) => {
  const {backend, io, slot} = await setup(t, 'crash')
  await t.rejects(backend.start!(slot(1), io), {
    code: 'SCORER_START_FAILED',
    message: /--preload\) exited with code 1 before it was loaded: .*ModuleNotFoundError: No module named 'sklearn'/,
  })
})

t.test('a load that outlasts --load-timeout is LOAD_TIMEOUT', async (t) => {
  const {backend, io, slot} = await setup(t, 'hang', 1000)
  await t.rejects(backend.start!(slot(1), io), {code: 'LOAD_TIMEOUT', message: /took longer than 1 s \(--load-timeout\)/})
})

t.test('a loaded process that dies takes its scorers along; the next start loads the model again', async (t) => {
  const {backend, lines, io, slot} = await setup(t, 'loaded')
  const first = await backend.start!(slot(1), io)
  const loaderPid = Number(/loaded once in pid (\d+)/.exec(lines.join('\n'))![1])
  process.kill(loaderPid, 'SIGKILL')
  t.same(await first.process.exited, {exitCode: null, signal: 'SIGKILL'}, 'its fork is gone too')
  const next = await backend.start!(slot(2), io)
  t.match(lines.join('\n'), /loaded once in pid \d+ \(start 2\)/, 'a new loaded process')
  t.equal(await ask(slot(2).socketPath), next.process.pid)
  await next.process.stop(5000)
  await backend.stop!(5000, undefined)
})
