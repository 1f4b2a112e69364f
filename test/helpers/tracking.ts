// A real MLflow tracking server for URI tests (sqlite backend, proxied artifacts, all in a temp dir),
// the script that logs and registers the `sum` model into any tracking URI, and an authenticating front.
import {execFile} from 'node:child_process'
import {mkdtemp} from 'node:fs/promises'
import {createServer, request, type IncomingHttpHeaders, type Server as HttpServer} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import {freePort, spawnProc, type Proc} from './servers.js'
import {toolchainBin, toolchainEnv, toolchainPython} from './toolchain.js'

export interface TrackingServer {
  readonly url: string
  readonly dir: string
  readonly proc: Proc
}

/** `mlflow server` on 127.0.0.1 with a sqlite store and --serve-artifacts; resolves when GET /health answers. */
export async function startTrackingServer(): Promise<TrackingServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mlserve-tracking-'))
  const port = await freePort()
  const proc = spawnProc(
    path.join(toolchainBin(), 'mlflow'),
    [
      'server',
      '--backend-store-uri',
      `sqlite:///${path.join(dir, 'mlflow.db')}`,
      '--serve-artifacts',
      '--artifacts-destination',
      path.join(dir, 'artifacts'),
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--workers',
      '1',
    ],
    {env: toolchainEnv(), cwd: dir},
  )
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 120_000
  for (;;) {
    try {
      // eslint-disable-next-line no-await-in-loop
      const res = await fetch(`${url}/health`)
      if (res.ok) break
    } catch {}

    if (Date.now() > deadline) throw new Error(`mlflow server did not start; stderr:\n${proc.stderr()}`)
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 300))
  }

  return {url, dir, proc}
}

const LOG_MODELS = `
import json, sys, warnings
warnings.filterwarnings("ignore")
import mlflow
import pandas as pd
from mlflow import MlflowClient

class SumModel(mlflow.pyfunc.PythonModel):
    def __init__(self, scale=1):
        self.scale = scale
    def predict(self, context, model_input, params=None):
        frame = pd.DataFrame(model_input)
        return ((frame["a"] + frame["b"]) * self.scale).tolist()

name = sys.argv[1]
client = MlflowClient()
out = {"name": name, "runs": [], "models": [], "versions": []}
for scale in (1, 10):
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=SumModel(scale), registered_model_name=name,
                                       pip_requirements=["mlflow", "pandas"])
        out["runs"].append(run.info.run_id)
        out["experiment_id"] = run.info.experiment_id
        out["models"].append(info.model_id)
        out["versions"].append(str(info.registered_model_version))
client.set_registered_model_alias(name, "champion", out["versions"][0])
client.transition_model_version_stage(name, out["versions"][0], "Production")
print(json.dumps(out))
`

export interface LoggedModels {
  readonly name: string
  readonly experiment_id: string
  /** Run ids: [0] logged the scale-1 model (predicts a+b), [1] the scale-10 one. */
  readonly runs: [string, string]
  /** Logged model ids (m-…), in the same order. */
  readonly models: [string, string]
  /** Registered versions, in the same order; @champion and Production point at versions[0]. */
  readonly versions: [string, string]
}

/** Logs two versions of a sum model into `trackingUri` (run from `cwd`), alias @champion and stage Production on the first. */
export async function logModels(trackingUri: string, name: string, cwd: string, extraEnv: Record<string, string> = {}): Promise<LoggedModels> {
  const {stdout} = await promisify(execFile)(toolchainPython(), ['-c', LOG_MODELS, name], {
    cwd,
    env: toolchainEnv({MLFLOW_TRACKING_URI: trackingUri, ...extraEnv}),
    maxBuffer: 16 * 1024 * 1024,
  })
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as LoggedModels
}

export interface AuthFront {
  readonly url: string
  /** The Authorization header of every request, in order. */
  readonly seen: Array<string | undefined>
  close(): Promise<void>
}

/**
 * An HTTP front that answers 401 without an Authorization header, 403 for one that `accept` refuses,
 * and forwards the rest to `upstream`.
 */
export async function startAuthFront(upstream: string, accept: (authorization: string) => boolean): Promise<AuthFront> {
  const target = new URL(upstream)
  const seen: Array<string | undefined> = []
  const server: HttpServer = createServer((req, res) => {
    const authorization = req.headers.authorization
    seen.push(authorization)
    if (!authorization) {
      res.writeHead(401, {'www-authenticate': 'Basic realm="mlflow"'}).end('unauthenticated')
      return
    }

    if (!accept(authorization)) {
      res.writeHead(403).end('forbidden')
      return
    }

    const headers: IncomingHttpHeaders = {...req.headers, host: target.host}
    const forward = request({host: target.hostname, port: target.port, method: req.method, path: req.url, headers}, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    forward.on('error', () => res.writeHead(502).end())
    req.pipe(forward)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
