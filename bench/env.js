// Benchmarks building and starting a model's own Python environment, mlserve against the reference it
// replaces, in one run. For one model (default: the fixture `versions`, which pins mlflow, pandas and
// scikit-learn) it times, from the command's spawn until GET /ping answers 200:
//
//   cold build    fresh package caches (UV_CACHE_DIR, PIP_CACHE_DIR) and a fresh env root
//   warm build    a fresh env root, the package caches the cold build of the same contender filled
//   cached start  the env from the warm build already exists (median of --rounds, contenders alternating)
//
// for `mlserve serve` (virtualenv manager with uv; and with MLSERVE_UV=none: python -m venv + pip) and
// `mlflow models serve` (--env-manager uv; and its default manager, virtualenv: pyenv + venv + pip).
// It prints a Markdown table and the ratios the project targets; the raw numbers, mlserve's phase
// timings and every server's timestamped output go to bench/results/env-<time>.json.
//
//   node bench/env.js [--rounds 3] [--build-rounds 1] [--timeout 900] [--model <dir>]
//                     [--contenders mlserve-uv,mlserve-pip,mlflow-uv,mlflow-virtualenv]
//                     [--launcher venv|toolchain] [--dont-write-bytecode] [--settle 60] [--pyenv-root <dir>]
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {once} from 'node:events'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {parseArgs} from 'node:util'

import {REPO_ROOT, cacheRoot, ensureFixtures, fixtureModel, toolchainBin, toolchainEnv} from '../test/helpers/toolchain.js'

import {freePort, groupAlive, hasExited, median, processes, runBenchmark, signalGroup, spawnTied, sum} from './lib.js'

const STOP_GRACE_MS = 15_000
const POLL_MS = 100
const PING_TIMEOUT_MS = 2000
/** Other load (CPU cores) under which the machine counts as quiet, and over which a run is flagged. */
const QUIET_CORES = 0.3
/** virtualenv and its dependencies for the bench-only launcher venv, on top of the toolchain's pins. */
const VIRTUALENV_PINS = ['virtualenv==21.15.11', 'distlib==0.4.4', 'filelock==4.2.12', 'platformdirs==4.14.8', 'python-discovery==1.9.6']
const TOOLCHAIN_REQUIREMENTS = path.join(REPO_ROOT, 'test/toolchain/requirements.txt')
/** Env roots, package caches and the snapshot of the CLI; hundreds of MB per build, removed on exit. */
const WORK_DIR = mkdtempSync(path.join(os.tmpdir(), 'mlserve-bench-env-'))

const CONTENDER_IDS = ['mlserve-uv', 'mlserve-pip', 'mlflow-uv', 'mlflow-virtualenv']

function nonNegative(value, name) {
  const n = Number(value)
  if (!(n >= 0)) throw new Error(`--${name} must be a number >= 0, not ${value}`)
  return n
}

function positive(value, name) {
  const n = Number(value)
  if (!(n > 0) || !Number.isInteger(n)) throw new Error(`--${name} must be a positive integer, not ${value}`)
  return n
}

function options() {
  const {values} = parseArgs({
    options: {
      model: {type: 'string'},
      rounds: {type: 'string', default: '3'},
      'build-rounds': {type: 'string', default: '1'},
      timeout: {type: 'string', default: '900'},
      settle: {type: 'string', default: '60'},
      contenders: {type: 'string', default: CONTENDER_IDS.join(',')},
      launcher: {type: 'string', default: 'venv'},
      'dont-write-bytecode': {type: 'boolean', default: false},
      'pyenv-root': {type: 'string', default: process.env.PYENV_ROOT ?? path.join(os.homedir(), '.pyenv')},
    },
  })
  const contenders = values.contenders.split(',').filter(Boolean)
  for (const id of contenders)
    if (!CONTENDER_IDS.includes(id)) throw new Error(`--contenders: unknown '${id}' (known: ${CONTENDER_IDS.join(', ')})`)
  if (!['venv', 'toolchain'].includes(values.launcher)) throw new Error(`--launcher must be venv or toolchain, not ${values.launcher}`)
  return {
    model: values.model ? path.resolve(values.model) : undefined,
    rounds: positive(values.rounds, 'rounds'),
    buildRounds: positive(values['build-rounds'], 'build-rounds'),
    timeoutMs: positive(values.timeout, 'timeout') * 1000,
    settleMs: nonNegative(values.settle, 'settle') * 1000,
    contenders,
    launcher: values.launcher,
    dontWriteBytecode: values['dont-write-bytecode'],
    pyenvRoot: path.resolve(values['pyenv-root']),
  }
}

/** A command's first output line, or undefined when it does not run. */
function versionOf(file, args = ['--version']) {
  try {
    return execFileSync(file, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
      .trim()
      .split('\n')[0]
  } catch {
    return undefined
  }
}

// ---- the mlserve CLI: a snapshot of the built package, so a concurrent `npm run build` cannot break a run ----

/** Every file under dir with its size and mtime: equal twice in a row means no build is writing it. */
function treeFingerprint(dir) {
  if (!existsSync(dir)) return ''
  return readdirSync(dir, {recursive: true, withFileTypes: true})
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const file = path.join(entry.parentPath ?? entry.path, entry.name)
      const {size, mtimeMs} = statSync(file)
      return `${path.relative(dir, file)} ${size} ${mtimeMs}`
    })
    .sort()
    .join('\n')
}

/**
 * Copies bin/, dist/, templates/ and the manifests into WORK_DIR (node_modules is linked) once dist/ is
 * complete and has stopped changing; returns bin/run.js there.
 */
async function snapshotCli() {
  const dist = path.join(REPO_ROOT, 'dist')
  const dir = path.join(WORK_DIR, 'mlserve')
  for (let attempt = 0; ; attempt++) {
    if (attempt === 60) throw new Error('dist/ is missing or keeps changing: run `npm run build` first')
    const before = treeFingerprint(dist)
    await sleep(attempt === 0 ? 1000 : 5000)
    if (!existsSync(path.join(dist, 'commands/serve.js')) || treeFingerprint(dist) !== before) {
      if (attempt === 0) console.error('# dist/ is missing or being rebuilt; waiting for it')
      continue
    }

    rmSync(dir, {recursive: true, force: true})
    for (const name of ['bin', 'dist', 'templates', 'package.json', 'oclif.manifest.json']) {
      if (existsSync(path.join(REPO_ROOT, name))) cpSync(path.join(REPO_ROOT, name), path.join(dir, name), {recursive: true})
    }

    if (treeFingerprint(dist) === before && treeFingerprint(path.join(dir, 'dist')).split('\n').length === before.split('\n').length) break
  }

  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  const runJs = path.join(dir, 'bin/run.js')
  execFileSync(process.execPath, [runJs, 'serve', '--help'], {stdio: 'ignore'}) // fails loudly if the snapshot is incomplete
  return runJs
}

function gitRevision() {
  const run = (...args) => execFileSync('git', args, {cwd: REPO_ROOT, encoding: 'utf8'}).trim()
  try {
    return `${run('rev-parse', '--short', 'HEAD')}${run('status', '--porcelain', '--', 'src', 'templates', 'bin').length > 0 ? '+dirty' : ''}`
  } catch {
    return undefined
  }
}

// ---- the mlflow CLI: the toolchain's pins, installed as `pip install mlflow` would (with bytecode) -----------

/**
 * A bench-only venv beside the toolchain that runs `mlflow models serve` for both mlflow contenders: the
 * toolchain's pinned requirements plus virtualenv (which older mlflow, e.g. 2.20, runs as `python -m
 * virtualenv` for its default manager), byte-compiled like a pip install. The toolchain itself is
 * installed by uv without bytecode, so its mlflow compiles ~5 s of modules on every start when
 * PYTHONDONTWRITEBYTECODE is set; that is not the mlflow users run. Built once with the toolchain's uv
 * and marked complete; a half-built one is rebuilt. Returns its bin directory.
 */
function ensureLauncherVenv() {
  const hash = createHash('sha256')
    .update(readFileSync(TOOLCHAIN_REQUIREMENTS))
    .update(`${VIRTUALENV_PINS.join('\n')}\ncompile-bytecode`)
    .digest('hex')
    .slice(0, 12)
  const dir = path.join(cacheRoot(), `bench-launcher-${hash}`)
  const marker = path.join(dir, '.mlserve-complete')
  if (!existsSync(marker)) {
    console.error(`# building the launcher venv for mlflow models serve in ${dir}`)
    rmSync(dir, {recursive: true, force: true})
    try {
      const run = (file, args) => execFileSync(file, args, {stdio: ['ignore', 'inherit', 'inherit']})
      run(process.env.MLSERVE_TEST_BASE_PYTHON ?? 'python3', ['-m', 'venv', dir])
      const requirements = ['-r', TOOLCHAIN_REQUIREMENTS, ...VIRTUALENV_PINS]
      run(path.join(toolchainBin(), 'uv'), [
        'pip',
        'install',
        '--quiet',
        '--compile-bytecode',
        '--python',
        path.join(dir, 'bin/python'),
        ...requirements,
      ])
      execFileSync(path.join(dir, 'bin/python'), ['-m', 'virtualenv', '--version'], {stdio: 'ignore'})
      writeFileSync(marker, new Date().toISOString())
    } catch (error) {
      rmSync(dir, {recursive: true, force: true})
      throw error
    }
  }

  return path.join(dir, 'bin')
}

/** The `python:` line of the model's python_env.yaml (mlflow's default manager installs it with pyenv). */
function modelPython(model) {
  const file = path.join(model, 'python_env.yaml')
  return existsSync(file) ? /^python:\s*['"]?([\w.]+)/m.exec(readFileSync(file, 'utf8'))?.[1] : undefined
}

// ---- the contenders --------------------------------------------------------------------------------------

/**
 * Each contender: the argv that serves the model on a port, and the environment given the run's
 * directories ({envRoot, uvCache, pipCache}).
 */
function contenders(ids, {runJs, model, launcherBin, pyenvRoot, dontWriteBytecode}) {
  const common = (dirs, extra = {}) => {
    const env = toolchainEnv({
      UV_CACHE_DIR: dirs.uvCache,
      PIP_CACHE_DIR: dirs.pipCache,
      // A Python that uv downloads lands here (and is noticed and reported), not in ~/.local/share/uv.
      UV_PYTHON_INSTALL_DIR: path.join(WORK_DIR, 'uv-python'),
      PYENV_ROOT: pyenvRoot,
      // uv and `pip --no-compile` leave envs without bytecode: Python writes it on first import, unless told not to.
      PYTHONDONTWRITEBYTECODE: dontWriteBytecode ? '1' : '',
      ...extra,
    })
    if (!dontWriteBytecode) delete env.PYTHONDONTWRITEBYTECODE
    return env
  }
  // mlflow runs from the launcher venv, uv (for --env-manager uv) from the toolchain, pyenv from its root.
  const mlflowPath = [launcherBin, path.join(pyenvRoot, 'bin'), toolchainBin(), process.env.PATH ?? ''].join(path.delimiter)
  const mlserve = (port) => [
    process.execPath,
    [runJs, 'serve', '-m', model, '--env-manager', 'virtualenv', '-h', '127.0.0.1', '-p', String(port)],
  ]
  const all = {
    'mlserve-uv': {
      label: 'mlserve, virtualenv with uv',
      command: mlserve,
      env: (dirs) => common(dirs, {MLSERVE_ENV_ROOT: dirs.envRoot, MLSERVE_UV: path.join(toolchainBin(), 'uv')}),
    },
    'mlserve-pip': {
      label: 'mlserve, venv + pip (MLSERVE_UV=none)',
      command: mlserve,
      env: (dirs) => common(dirs, {MLSERVE_ENV_ROOT: dirs.envRoot, MLSERVE_UV: 'none'}),
    },
    'mlflow-uv': {
      label: 'mlflow models serve --env-manager uv',
      command: (port) => [
        path.join(launcherBin, 'mlflow'),
        ['models', 'serve', '-m', model, '--env-manager', 'uv', '-h', '127.0.0.1', '-p', String(port)],
      ],
      env: (dirs) => common(dirs, {MLFLOW_ENV_ROOT: dirs.envRoot, PATH: mlflowPath}),
    },
    'mlflow-virtualenv': {
      label: 'mlflow models serve (default: virtualenv)',
      command: (port) => [path.join(launcherBin, 'mlflow'), ['models', 'serve', '-m', model, '-h', '127.0.0.1', '-p', String(port)]],
      env: (dirs) => common(dirs, {MLFLOW_ENV_ROOT: dirs.envRoot, PATH: mlflowPath}),
    },
  }
  return ids.map((id) => ({id, ...all[id]}))
}

// ---- children: each in its own process group, tied to this process by setpriv --pdeathsig ---------------

const running = new Set()
/** lifecycle.stopping: a signal or a failure is stopping the benchmark (set by runBenchmark). */
const lifecycle = {stopping: false}

/** Collects a stream's lines, each with the seconds since start at which it arrived. */
function collectLines(stream, start, lines) {
  let partial = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk) => {
    const t = (performance.now() - start) / 1000
    const parts = (partial + chunk).split(/\r?\n|\r/)
    partial = parts.pop()
    for (const line of parts) if (line.trim() !== '') lines.push({t, line})
  })
  stream.on('end', () => partial.trim() !== '' && lines.push({t: (performance.now() - start) / 1000, line: partial}))
}

/**
 * Spawns the contender's server on a free port and times it until /ping answers 200 (polled every
 * POLL_MS), then stops it. Returns {status: ok|timeout|failed, seconds, cpuSeconds, lines, error}.
 */
async function timeToReady(contender, dirs, {timeoutMs, settleMs}) {
  const settled = settleMs > 0 ? await waitForQuiet(settleMs) : undefined
  const port = await freePort()
  if (lifecycle.stopping) throw new Error('stopping')
  const [file, args] = contender.command(port)
  const lines = []
  const before = cpuSnapshot()
  const start = performance.now()
  const child = spawnTied(file, args, {env: contender.env(dirs), stdio: ['ignore', 'pipe', 'pipe']})
  collectLines(child.stdout, start, lines)
  collectLines(child.stderr, start, lines)
  const server = {child, exited: once(child, 'close').catch(() => [])}
  running.add(server)
  const url = `http://127.0.0.1:${port}/ping`
  const result = {port, lines}
  try {
    const deadline = start + timeoutMs
    for (;;) {
      if (hasExited(child)) {
        Object.assign(result, {
          status: 'failed',
          seconds: (performance.now() - start) / 1000,
          error: `exited (${child.exitCode ?? child.signalCode}) before /ping answered 200`,
        })
        break
      }

      const status = await fetch(url, {signal: AbortSignal.timeout(PING_TIMEOUT_MS)}).then(
        (res) => res.arrayBuffer().then(() => res.status),
        () => 0,
      )
      const now = performance.now()
      if (status === 200) {
        Object.assign(result, {
          status: 'ok',
          seconds: (now - start) / 1000,
          cpuSeconds: treeCpuSeconds(child.pid),
          otherLoad: backgroundCores(before, cpuSnapshot()),
          loadBefore: settled,
        })
        break
      }

      if (now >= deadline || lifecycle.stopping) {
        Object.assign(result, {status: 'timeout', seconds: (now - start) / 1000, error: `no 200 on /ping within ${timeoutMs / 1000} s`})
        break
      }

      await sleep(POLL_MS)
    }
  } finally {
    await stopServer(server)
  }

  if (result.status !== 'ok') {
    result.tail = lines
      .slice(-40)
      .map((l) => l.line)
      .join('\n')
    console.error(`! ${contender.id}: ${result.error}; last output:\n${result.tail}`)
    for (const [pattern, hint] of [
      [/Could not find the virtualenv binary/, 'this mlflow needs the virtualenv package beside it: use --launcher venv'],
      [/Could not find the pyenv binary/, 'mlflow needs pyenv on PATH: point --pyenv-root at a pyenv installation'],
    ]) {
      if (pattern.test(result.tail)) console.error(`! hint: ${hint}`)
    }
  }

  return result
}

/** SIGINT to the whole process group; SIGKILL if any of it is still running after STOP_GRACE_MS. */
async function stopServer(server) {
  if (!running.delete(server)) return
  const {pid} = server.child
  const deadline = Date.now() + STOP_GRACE_MS
  signalGroup(pid, 'SIGINT')
  await Promise.race([server.exited, sleep(STOP_GRACE_MS, undefined, {ref: false})])
  while (groupAlive(pid) && Date.now() < deadline) await sleep(100)
  if (groupAlive(pid)) signalGroup(pid, 'SIGKILL')
  await server.exited
}

/**
 * CPU seconds used so far by the process tree under pid (its own and its reaped children's), USER_HZ
 * 100. Installers have been reaped by the time /ping answers, so this is the CPU the build cost.
 */
function treeCpuSeconds(pid) {
  const all = processes()
  const parent = new Map(all.map((p) => [p.pid, p.ppid]))
  const under = (p) => {
    for (let depth = 0; p > 1 && depth < 64; depth++, p = parent.get(p)) if (p === pid) return true
    return false
  }
  return all.length === 0 ? undefined : sum(all.filter((p) => under(p.pid)).map((p) => p.ticks)) / 100
}

const stopAll = () => Promise.all([...running].map(stopServer))

// ---- background load: CPU time used outside this benchmark's process tree ---------------------------------

/** Clock ticks: the machine's busy time (steal included) and that of this process and its descendants. */
function cpuSnapshot() {
  if (!existsSync('/proc/stat')) return undefined
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number)
  return {at: performance.now(), busy: user + nice + system + irq + softirq + steal, ours: (treeCpuSeconds(process.pid) ?? 0) * 100}
}

/** CPU cores used by other processes between two snapshots (USER_HZ is 100 on Linux). */
const backgroundCores = (a, b) => (a && b ? Math.max(0, b.busy - a.busy - (b.ours - a.ours)) / 100 / ((b.at - a.at) / 1000) : undefined)

/** Waits (up to maxMs) until other processes use less than QUIET_CORES for a second; returns their last load. */
async function waitForQuiet(maxMs) {
  const deadline = Date.now() + maxMs
  for (let told = false; ; told = true) {
    const before = cpuSnapshot()
    await sleep(1000)
    const cores = backgroundCores(before, cpuSnapshot())
    if (cores === undefined || cores < QUIET_CORES || Date.now() >= deadline) return cores
    if (!told) console.error(`#   other processes use ${cores.toFixed(1)} cores; waiting up to ${maxMs / 1000} s for them to settle`)
  }
}

process.on('exit', () => {
  for (const server of running) signalGroup(server.child.pid, 'SIGKILL')
  rmSync(WORK_DIR, {recursive: true, force: true})
})

// ---- where the time goes: mlserve's phase lines, and milestones in mlflow's output --------------------------

/** `[mlserve] <phase>[: detail] (<duration>)` lines: {t (s since spawn, when it ended), phase, seconds}. */
function mlservePhases(lines) {
  return lines.flatMap(({t, line}) => {
    const match = /^\[mlserve\] (.+) \((\d+(?:\.\d+)?) (ms|s)\)$/.exec(line)
    if (!match) return []
    return [{t, phase: match[1].replace(/: (built|cached) \/.*/, ': $1'), seconds: Number(match[2]) / (match[3] === 'ms' ? 1000 : 1)}]
  })
}

/** What mlflow prints on the way, and when (first time each; the installers' summary lines every time). */
const MILESTONES = [
  ['first output (the mlflow CLI has loaded)', /./],
  ['creating the env (after pyenv install, for virtualenv)', /Creating a new environment|Environment .* already exists/],
  ['installing dependencies', /Installing dependencies/],
  ['downloads done', /^Installing collected packages|^Prepared \d+ packages/, 'all'],
  ['installer done', /^Successfully installed|^Installed \d+ packages/, 'all'],
  ['running in the env (a check, then the scoring server)', /=== Running command/],
  ['uvicorn listening', /Uvicorn running on|Listening at/],
  ['application startup complete', /Application startup complete/],
]

function milestones(lines) {
  const found = []
  for (const [name, pattern, all] of MILESTONES) {
    const hits = lines.filter(({line}) => pattern.test(line))
    for (const hit of all ? hits : hits.slice(0, 1)) found.push({t: hit.t, milestone: name, line: hit.line.slice(0, 160)})
  }

  return found.sort((a, b) => a.t - b.t)
}

/** The commands and uv's summary lines ("Prepared 85 packages in 5.80s") from mlserve's installer logs under an env root. */
function installerSummary(envRoot) {
  if (!existsSync(envRoot)) return []
  const logs = readdirSync(envRoot, {withFileTypes: true}).flatMap((entry) => {
    const file = path.join(envRoot, entry.name, '.mlserve-build.log')
    return entry.isDirectory() && existsSync(file) ? [readFileSync(file, 'utf8')] : []
  })
  const wanted = /^\$ |^(Resolved|Prepared|Installed|Uninstalled|Audited|Downloaded) \d+ packages? in |^Successfully installed /
  return logs.flatMap((log) =>
    log
      .split('\n')
      .filter((line) => wanted.test(line))
      .map((line) => line.slice(0, 200)),
  )
}

// ---- the benchmark ----------------------------------------------------------------------------------------

const newDir = (name) => mkdtempSync(path.join(WORK_DIR, `${name}-`))

/** Cold and warm builds: per round, each contender gets fresh caches, a cold build, then a warm one. */
async function builds(list, opts) {
  const results = new Map(list.map((c) => [c.id, {cold: [], warm: [], envRoot: undefined}]))
  for (let round = 0; round < opts.buildRounds; round++) {
    const order = round % 2 === 0 ? list : [...list].reverse()
    const caches = new Map()
    for (const contender of order) {
      const cache = newDir(`${contender.id}-caches`)
      caches.set(contender.id, {uvCache: path.join(cache, 'uv'), pipCache: path.join(cache, 'pip'), dir: cache})
      const envRoot = newDir(`${contender.id}-cold`)
      console.error(`# build round ${round + 1}: ${contender.id}, cold`)
      const result = await timeToReady(contender, {...caches.get(contender.id), envRoot}, opts)
      result.installer = installerSummary(envRoot)
      rmSync(envRoot, {recursive: true, force: true})
      report(contender, 'cold', result)
      results.get(contender.id).cold.push(result)
    }

    for (const contender of [...order].reverse()) {
      const envRoot = newDir(`${contender.id}-warm`)
      console.error(`# build round ${round + 1}: ${contender.id}, warm`)
      const result = await timeToReady(contender, {...caches.get(contender.id), envRoot}, opts)
      result.installer = installerSummary(envRoot)
      // The package caches are done with: uv's envs hold hard links, not references, into them.
      rmSync(caches.get(contender.id).dir, {recursive: true, force: true})
      report(contender, 'warm', result)
      const entry = results.get(contender.id)
      entry.warm.push(result)
      if (entry.envRoot) rmSync(entry.envRoot, {recursive: true, force: true})
      entry.envRoot = result.status === 'ok' ? envRoot : (rmSync(envRoot, {recursive: true, force: true}), undefined)
    }
  }

  return results
}

/** Cached starts: rounds of A B C D, D C B A … on the envs the warm builds left. */
async function cachedStarts(list, built, opts) {
  const ready = list.filter((c) => built.get(c.id).envRoot)
  const samples = new Map(list.map((c) => [c.id, []]))
  // The env exists, so nothing is installed; empty caches make sure nothing is taken from elsewhere either.
  const unusedCaches = {uvCache: newDir('uv-cache-unused'), pipCache: newDir('pip-cache-unused')}
  for (let round = 0; round < opts.rounds; round++) {
    for (const contender of round % 2 === 0 ? ready : [...ready].reverse()) {
      console.error(`# cached start round ${round + 1}: ${contender.id}`)
      const result = await timeToReady(contender, {envRoot: built.get(contender.id).envRoot, ...unusedCaches}, opts)
      report(contender, 'cached', result)
      samples.get(contender.id).push(result)
    }
  }

  return samples
}

function report(contender, phase, result) {
  const cpu = result.cpuSeconds === undefined ? '' : `, ${result.cpuSeconds.toFixed(1)} CPU s`
  const load = result.otherLoad === undefined ? '' : `, other load ${result.otherLoad.toFixed(2)} cores`
  console.error(`#   ${contender.id} ${phase}: ${result.status} ${result.seconds.toFixed(2)} s${cpu}${load}`)
}

/** A phase's number for a contender: the median of the successful runs, or why there is none. */
function summarize(runs) {
  const ok = runs.filter((r) => r.status === 'ok')
  if (runs.length === 0) return {status: 'not run'}
  if (ok.length === 0) return {status: runs.some((r) => r.status === 'timeout') ? 'timeout' : 'failed'}
  return {
    status: 'ok',
    seconds: median(ok.map((r) => r.seconds)),
    cpuSeconds: median(ok.map((r) => r.cpuSeconds ?? 0)),
    maxOtherLoad: Math.max(...ok.map((r) => r.otherLoad ?? 0)),
    runs: ok.length,
    of: runs.length,
  }
}

const cell = (s) => (s.status === 'ok' ? `${s.seconds.toFixed(1)}${s.runs < s.of ? ` (${s.runs}/${s.of} ok)` : ''}` : s.status)

function ratio(a, b) {
  return a?.status === 'ok' && b?.status === 'ok' ? a.seconds / b.seconds : undefined
}

async function main() {
  const opts = options()
  ensureFixtures()
  const model = opts.model ?? fixtureModel('versions')
  const runJs = await snapshotCli()
  const python = modelPython(model)

  if (opts.contenders.includes('mlflow-virtualenv')) {
    const pyenv = path.join(opts.pyenvRoot, 'bin/pyenv')
    if (!existsSync(pyenv)) throw new Error(`mlflow's virtualenv manager needs pyenv, which is not at ${pyenv} (--pyenv-root)`)
    if (python && !existsSync(path.join(opts.pyenvRoot, 'versions', python))) {
      console.error(`# warning: Python ${python} is not in ${opts.pyenvRoot}/versions: mlflow will compile it with pyenv (slow; --timeout)`)
    }
  }

  const launcherBin = opts.launcher === 'venv' ? ensureLauncherVenv() : toolchainBin()
  const list = contenders(opts.contenders, {runJs, model, launcherBin, pyenvRoot: opts.pyenvRoot, dontWriteBytecode: opts.dontWriteBytecode})
  const machine = {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    uv: versionOf(path.join(toolchainBin(), 'uv')),
    mlflow: versionOf(path.join(launcherBin, 'mlflow'))?.replace(/^mlflow, version /, ''),
    pyenv: versionOf(path.join(opts.pyenvRoot, 'bin/pyenv')),
    mlserve: gitRevision(),
    mlflowLauncher: launcherBin,
    pythonDontWriteBytecode: opts.dontWriteBytecode,
    workDir: WORK_DIR,
  }
  console.error(`# model ${model} (Python ${python ?? '?'}); work dir ${WORK_DIR}`)

  const built = await builds(list, opts)
  const cached = await cachedStarts(list, built, opts)
  for (const {envRoot} of built.values()) if (envRoot) rmSync(envRoot, {recursive: true, force: true})

  const rows = list.map((c) => ({
    id: c.id,
    label: c.label,
    cold: summarize(built.get(c.id).cold),
    warm: summarize(built.get(c.id).warm),
    cached: summarize(cached.get(c.id)),
  }))
  const row = (id) => rows.find((r) => r.id === id)
  const ratios = [
    ['cached start-to-ready, mlserve(uv) / mlflow(uv)', 'cached', 'mlserve-uv', 'mlflow-uv', 0.8],
    ['cold build, mlserve(uv) / mlflow default virtualenv', 'cold', 'mlserve-uv', 'mlflow-virtualenv', 0.3],
    ['cold build, mlserve(uv) / mlflow(uv)', 'cold', 'mlserve-uv', 'mlflow-uv'],
    ['warm build, mlserve(uv) / mlflow(uv)', 'warm', 'mlserve-uv', 'mlflow-uv'],
    ['cold build, mlserve(pip) / mlflow default virtualenv', 'cold', 'mlserve-pip', 'mlflow-virtualenv'],
  ].map(([name, phase, a, b, target]) => ({name, phase, a, b, target, value: ratio(row(a)?.[phase], row(b)?.[phase])}))

  const lines = [
    '| contender | cold build s | warm build s | cached start s |',
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.label} | ${cell(r.cold)} | ${cell(r.warm)} | ${cell(r.cached)} |`),
    '',
    '| ratio | value | target |',
    '|---|---:|---:|',
    ...ratios.map(
      (r) =>
        `| ${r.name} | ${r.value === undefined ? 'n/a' : r.value.toFixed(2)} | ${r.target === undefined ? '' : `<= ${r.target}${r.value === undefined ? '' : r.value <= r.target ? ' (met)' : ' (missed)'}`} |`,
    ),
  ]
  console.log(`\n${lines.join('\n')}\n`)
  console.log(
    `CPU seconds until ready (cold / warm / cached): ${rows.map((r) => `${r.id} ${[r.cold, r.warm, r.cached].map((s) => (s.status === 'ok' ? s.cpuSeconds.toFixed(1) : '-')).join(' / ')}`).join('; ')}.`,
  )
  console.log(
    `Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGb} GB, Node ${machine.node}, ${machine.uv}, mlflow ${machine.mlflow}${machine.pyenv ? `, ${machine.pyenv}` : ''}; mlserve ${machine.mlserve ?? '?'}.`,
  )
  console.log(
    `PYTHONDONTWRITEBYTECODE ${opts.dontWriteBytecode ? '=1: no server writes bytecode (as in many container images)' : 'unset: Python writes bytecode on first import (its default)'}; mlflow runs from ${opts.launcher === 'venv' ? "a byte-compiled venv with the toolchain's pins" : 'the toolchain'}.`,
  )
  const loads = rows
    .flatMap((r) => [r.cold, r.warm, r.cached])
    .filter((s) => s.status === 'ok')
    .map((s) => s.maxOtherLoad)
  console.log(`Other load: up to ${Math.max(0, ...loads).toFixed(2)} CPU cores used by processes outside the benchmark during a timed run.`)
  if (loads.some((load) => load > QUIET_CORES)) {
    console.log(`Warning: other processes competed for the CPUs during some runs (see "otherLoad" in the JSON); those numbers are noisy.`)
  }
  console.log(
    `Seconds from spawn to the first 200 on /ping (polled every ${POLL_MS} ms); builds ${opts.buildRounds} round(s) each, cached start the median of ${opts.rounds} (contenders alternating).`,
  )

  for (const c of list.filter((c) => c.id.startsWith('mlserve'))) {
    const cold = built.get(c.id).cold.find((r) => r.status === 'ok')
    if (!cold) continue
    console.log(`\n${c.id}, cold build, mlserve's phases (ended at s since spawn: phase, duration):`)
    for (const p of mlservePhases(cold.lines)) console.log(`  ${p.t.toFixed(1).padStart(6)}  ${p.phase} (${p.seconds.toFixed(2)} s)`)
    console.log(`  ${cold.seconds.toFixed(1).padStart(6)}  /ping 200`)
    const uvLines = cold.installer.filter((line) => !line.startsWith('$ ') && !line.startsWith('Successfully'))
    if (uvLines.length > 0) console.log(`  installer: ${uvLines.join('; ')}`)
  }

  for (const c of list.filter((c) => c.id.startsWith('mlflow'))) {
    const cold = built.get(c.id).cold.find((r) => r.status === 'ok')
    if (!cold) continue
    console.log(`\n${c.id}, cold build, milestones in mlflow's output (s since spawn):`)
    for (const m of milestones(cold.lines))
      console.log(
        `  ${m.t.toFixed(1).padStart(6)}  ${m.milestone}${/^(installer|downloads) done$/.test(m.milestone) ? `: ${m.line.slice(0, 60)}` : ''}`,
      )
    console.log(`  ${cold.seconds.toFixed(1).padStart(6)}  /ping 200`)
  }

  const uvPython = path.join(WORK_DIR, 'uv-python')
  if (existsSync(uvPython) && readdirSync(uvPython).some((name) => name.startsWith('cpython'))) {
    console.log(`\nNote: uv downloaded a Python during the run (${readdirSync(uvPython).join(', ')}); that is part of the build times above.`)
  }

  const resultsDir = path.join(REPO_ROOT, 'bench/results')
  mkdirSync(resultsDir, {recursive: true})
  const file = path.join(resultsDir, `env-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  const detail = (r) => ({...r, phases: mlservePhases(r.lines), milestones: milestones(r.lines)})
  const raw = Object.fromEntries(
    list.map((c) => [
      c.id,
      {
        cold: built.get(c.id).cold.map(detail),
        warm: built.get(c.id).warm.map(detail),
        cached: cached.get(c.id).map(detail),
      },
    ]),
  )
  writeFileSync(
    file,
    `${JSON.stringify({date: new Date().toISOString(), machine, settings: {...opts, model, python}, rows, ratios, raw}, null, 2)}\n`,
  )
  console.error(`# results written to ${path.relative(REPO_ROOT, file)}`)
}

runBenchmark(main, stopAll, lifecycle)
