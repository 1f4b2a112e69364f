// What bench/multi.js needs besides its steps: the N models it saves, process-tree PSS from /proc, timed
// requests, servers started and stopped by process group, and small formatting helpers.
import {execFileSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {toolchainEnv, toolchainPython} from '../test/helpers/toolchain.js'

import {hasExited, processes, signalGroup, spawnTied} from './lib.js'

export const BODY = JSON.stringify({dataframe_split: {columns: ['a', 'b', 'c', 'd'], data: [[5.1, 3.5, 1.4, 0.2]]}})
/** Children to kill when the benchmark stops. */
export const live = new Set()
export const run = {stopping: false}

/** N logistic regressions on iris; the odd ones get the bundled example's requirements (its own virtualenv). */
export function saveModels(WORK_DIR, IRIS, names) {
  const script = path.join(WORK_DIR, 'save.py')
  writeFileSync(
    script,
    `import sys, shutil, os, pandas as pd, mlflow, sklearn, cloudpickle, mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["a", "b", "c", "d"]
out, iris = sys.argv[1], sys.argv[2]
for i, name in enumerate(sys.argv[3:]):
    model = LogisticRegression(C=0.1 + i, max_iter=500).fit(X, y)
    # Requirements given (mlflow would otherwise load each model in a subprocess to infer them).
    pins = [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}", f"cloudpickle=={cloudpickle.__version__}"]
    mlflow.sklearn.save_model(model, os.path.join(out, name), input_example=X.head(2), pip_requirements=pins)
    if i % 2 == 1:
        for f in ("requirements.txt", "python_env.yaml", "conda.yaml"):
            shutil.copy(os.path.join(iris, f), os.path.join(out, name, f))
`,
  )
  execFileSync(toolchainPython(), [script, WORK_DIR, IRIS, ...names], {env: toolchainEnv(), cwd: WORK_DIR, stdio: 'inherit'})
  const file = path.join(WORK_DIR, 'models.yaml')
  writeFileSync(
    file,
    names.map((name, i) => `- name: ${name}\n  uri: ${path.join(WORK_DIR, name)}\n${i % 2 ? '  env_manager: virtualenv\n' : ''}`).join(''),
  )
  return file
}

/** Total PSS (bytes) of `roots` and their descendants. */
export function treePss(roots) {
  const table = processes()
  const tree = new Set(roots)
  for (let grew = true; grew;) {
    grew = false
    for (const p of table)
      if (!tree.has(p.pid) && tree.has(p.ppid) && p.state !== 'Z') {
        tree.add(p.pid)
        grew = true
      }
  }

  let kb = 0
  for (const pid of tree) {
    try {
      kb += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0)
    } catch {} // gone meanwhile
  }

  return kb * 1024
}

export async function call(url, body = BODY) {
  const began = performance.now()
  try {
    const res = await fetch(url, {method: 'POST', headers: {'content-type': 'application/json'}, body, signal: AbortSignal.timeout(120_000)})
    const text = await res.text()
    return {status: res.status, text, retryAfter: res.headers.get('retry-after'), ms: performance.now() - began}
  } catch {
    return {status: 0, text: '', ms: performance.now() - began}
  }
}

export function spawnServer(file, argv, env = toolchainEnv()) {
  const child = spawnTied(file, argv, {env, stdio: ['ignore', 'ignore', 'pipe']})
  live.add(child)
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk.toString()))
  return {child, stderr: () => stderr}
}

export async function stop(server) {
  signalGroup(server.child.pid, 'SIGTERM')
  for (let i = 0; i < 100 && !hasExited(server.child); i++) await sleep(100)
  signalGroup(server.child.pid, 'SIGKILL')
  live.delete(server.child)
}

export async function until(what, check, server, timeoutMs = 900_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (run.stopping || hasExited(server.child)) throw new Error(`${what}: the server exited:\n${server.stderr().slice(-3000)}`)
    if (await check()) return
    await sleep(200)
  }

  throw new Error(`${what}: timed out:\n${server.stderr().slice(-3000)}`)
}

export const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)]
export const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`
export const metric = (text, name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0)
export const sumMetric = (text, prefix) =>
  [...text.matchAll(new RegExp(`^${prefix}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0)
