// What both benchmarks need: children tied to the benchmark and stopped by process group, free ports,
// the process table from /proc, small statistics, and how a run starts and stops.
import {spawn} from 'node:child_process'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {createServer} from 'node:net'

import {REPO_ROOT} from '../test/helpers/toolchain.js'

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => existsSync(file))

export const sum = (values) => values.reduce((total, value) => total + value, 0)

/** The median, or undefined for no values. */
export function median(values) {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length / 2
  return Number.isInteger(mid) ? (sorted[mid - 1] + sorted[mid]) / 2 : sorted[Math.floor(mid)]
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** Spawns file in a new process group that gets SIGKILL when this process dies. */
export function spawnTied(file, args, options) {
  const argv = SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', '--', file, ...args] : [file, ...args]
  return spawn(argv[0], argv.slice(1), {cwd: REPO_ROOT, detached: true, ...options})
}

export const hasExited = (child) => child.exitCode !== null || child.signalCode !== null

/** Every process from /proc (Linux; none elsewhere), with its CPU time and its reaped children's, in clock ticks. */
export function processes() {
  if (!existsSync('/proc')) return []
  return readdirSync('/proc').flatMap((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return [
        {pid: Number(pid), state: fields[0], ppid: Number(fields[1]), pgrp: Number(fields[2]), ticks: sum(fields.slice(11, 15).map(Number))},
      ]
    } catch {
      return [] // not a process, or gone
    }
  })
}

/** Whether a process group still has a live (not zombie) member; mlflow's uvicorn can outlive mlflow. */
export const groupAlive = (pgid) => processes().some((p) => p.pgrp === pgid && p.state !== 'Z')

export function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal)
  } catch {} // already gone
}

/**
 * Runs a benchmark's main(). SIGINT/SIGTERM stop every server it started and exit 130; a failure stops
 * them and exits 1. `run.stopping` turns true first, so loops give up and the stop is not reported as
 * another error.
 */
export function runBenchmark(main, stopAll, run) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      console.error(`# ${signal}: stopping the servers`)
      run.stopping = true
      stopAll().finally(() => process.exit(130))
    })
  }

  main().catch(async (error) => {
    if (!run.stopping) console.error(error)
    run.stopping = true
    await stopAll()
    process.exitCode = 1
  })
}
