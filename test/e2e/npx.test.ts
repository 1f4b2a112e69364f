// `npx mlserve serve` (npm exec runs mlserve under `sh -c`, which passes no signal on): a SIGTERM to the
// launcher alone, or Ctrl-C to the whole process group, stops mlserve cleanly and leaves nothing serving.
import {spawn} from 'node:child_process'
import {createServer} from 'node:net'

import t, {type Test} from 'tap'

import {eventually, isRunning, parentOf} from '../helpers/servers.js'
import {REPO_ROOT, fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

/** `npx mlserve serve` from the repository (npx runs the package's own bin), in a process group of its own. */
async function startThroughNpx(t: Test) {
  const npx = spawn(
    'npx',
    ['--offline', 'mlserve', 'serve', '-m', fixtureModel('sum'), '--env-manager', 'local', '--python', toolchainPython(), '-p', '0'],
    {
      cwd: REPO_ROOT,
      env: toolchainEnv(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let stderr = ''
  npx.stdout.resume()
  npx.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => {
    npx.on('exit', (code, signal) => resolve({code, signal}))
  })
  const pids: number[] = []
  t.teardown(() => {
    for (const pid of pids) if (isRunning(pid)) process.kill(pid, 'SIGKILL')
    try {
      process.kill(-npx.pid!, 'SIGKILL')
    } catch {}
  })
  const ready = await eventually(() => /ready: serving/.test(stderr), 120_000)
  if (!ready) throw new Error(`mlserve did not become ready through npx; stderr:\n${stderr}`)
  const url = /listening on (http:\/\/\S+)/.exec(stderr)![1]!
  const scorer = Number(/start scorer [^\n]*: pid (\d+)/.exec(stderr)![1])
  const mlserve = parentOf(scorer)
  pids.push(scorer, mlserve)
  t.not(mlserve, npx.pid, 'mlserve is not npm itself (npm exec runs it under a shell)')
  return {npx, url, scorer, mlserve, exited, stderr: () => stderr}
}

/** Whether host:port can be bound again (nothing listens on it). */
const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })

t.test('SIGTERM to the npx process stops mlserve and its scorer, and frees the port', async (t) => {
  const run = await startThroughNpx(t)
  process.kill(run.npx.pid!, 'SIGTERM')
  await run.exited
  t.ok(await eventually(() => !isRunning(run.mlserve)), 'mlserve is gone, not orphaned and serving')
  t.ok(await eventually(() => !isRunning(run.scorer)), 'its scorer is gone')
  t.ok(await portFree(Number(new URL(run.url).port)), 'the port is free')
  t.match(run.stderr(), /shutting down: finishing requests in flight/, 'mlserve drained as on SIGTERM')
})

t.test('Ctrl-C (SIGINT to the process group) drains and stops mlserve under npx', async (t) => {
  const run = await startThroughNpx(t)
  process.kill(-run.npx.pid!, 'SIGINT')
  await run.exited
  t.ok(await eventually(() => !isRunning(run.mlserve)), 'mlserve is gone')
  t.ok(await eventually(() => !isRunning(run.scorer)), 'its scorer is gone')
  t.ok(await portFree(Number(new URL(run.url).port)), 'the port is free')
  t.match(run.stderr(), /received SIGINT\n[^]*shutting down: finishing requests in flight/, 'one signal: a drain')
  t.notMatch(run.stderr(), /received SIGINT again|Error:/, 'not a forced stop, no error')
})
