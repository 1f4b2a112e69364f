// The servers a benchmark starts: each on a free port in its own process group, tied to the benchmark by
// setpriv --pdeathsig, its output in a log file under the benchmark's work directory, ready once /ping
// answers 200; stopped by process group (SIGINT, then SIGKILL), all of them on exit with the work directory.
import {once} from 'node:events'
import {closeSync, openSync, readFileSync, rmSync} from 'node:fs'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {toolchainEnv} from '../test/helpers/toolchain.js'
import {freePort, groupAlive, hasExited, signalGroup, spawnTied} from './lib.js'

/**
 * @param {string} workDir removed when the process exits
 * @param {{readyTimeoutMs?: number, stopGraceMs?: number}} [options]
 */
export function serverFleet(workDir, {readyTimeoutMs = 180_000, stopGraceMs = 15_000} = {}) {
  const running = new Set()
  /** lifecycle.stopping: a signal or a failure is stopping the benchmark (set by runBenchmark). */
  const lifecycle = {stopping: false}

  /** Starts `file args(port)` on a free port and waits until /ping answers 200. */
  async function startServer(name, file, args) {
    const port = await freePort()
    if (lifecycle.stopping) throw new Error('stopping')
    const logFile = path.join(workDir, `${name}-${port}.log`)
    const out = openSync(logFile, 'w')
    const child = spawnTied(file, args(port), {env: toolchainEnv(), stdio: ['ignore', out, out]})
    closeSync(out)
    const server = {
      name,
      url: `http://127.0.0.1:${port}`,
      child,
      exited: once(child, 'close'),
      log: () => readFileSync(logFile, 'utf8').slice(-20_000),
    }
    running.add(server)
    const deadline = Date.now() + readyTimeoutMs
    while (Date.now() < deadline && !hasExited(child) && !lifecycle.stopping) {
      const status = await fetch(`${server.url}/ping`).then(
        (res) => res.arrayBuffer().then(() => res.status),
        () => 0,
      )
      if (status === 200) return server
      await sleep(250)
    }
    throw new Error(`${name} did not become ready on ${server.url}; output:\n${server.log()}`)
  }

  /** SIGINT to the whole process group; SIGKILL if any of it is still running after the grace. */
  async function stopServer(server) {
    running.delete(server)
    const {pid} = server.child
    const deadline = Date.now() + stopGraceMs
    signalGroup(pid, 'SIGINT')
    await Promise.race([server.exited, sleep(stopGraceMs, undefined, {ref: false})])
    while (groupAlive(pid) && Date.now() < deadline) await sleep(100)
    if (groupAlive(pid)) signalGroup(pid, 'SIGKILL')
    await server.exited
  }

  const stopAll = () => Promise.all([...running].map(stopServer))

  process.on('exit', () => {
    for (const server of running) signalGroup(server.child.pid, 'SIGKILL')
    rmSync(workDir, {recursive: true, force: true})
  })

  return {startServer, stopAll, lifecycle}
}
