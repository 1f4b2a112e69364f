// The backend for --enable-mlserver: one `mlserver start <model dir>` per slot, with mlserver_mlflow's
// runtime, on its own ports of 127.0.0.1, configured through MLSERVER_* variables as mlflow does.
import path from 'node:path'

import type {EnvVars} from '../config.js'
import type {PythonEnv} from '../env/env.js'
import type {Backend, SlotInfo} from './backend.js'
import type {ScorerCommand} from './command.js'

/**
 * What mlserve installs into the model's environment for MLServer: the ranges of mlflow's own Docker
 * image. uvloop 0.22 broke MLServer's inference workers ("There is no current event loop"); mlflow pins
 * it below that too.
 */
export const MLSERVER_PACKAGES: readonly string[] = ['mlserver>=1.2.0,!=1.3.1,<2.0.0', 'mlserver-mlflow>=1.2.0,!=1.3.1,<2.0.0', 'uvloop<0.22']

/** The model name MLServer serves under when MLSERVER_MODEL_NAME is not set (as in mlflow). */
export const DEFAULT_MODEL_NAME = 'mlflow-model'

/**
 * MLSERVER_PARALLEL_WORKERS for each process. mlflow runs one MLServer with --workers inference
 * processes; mlserve runs one MLServer per slot, so each does its inference in-process (0): one Python
 * process per slot instead of two, a faster start, no .envs/.metrics directories in the working
 * directory, and a crash is the slot's own exit, which the supervisor sees and restarts.
 */
export const MLSERVER_PARALLEL_WORKERS = 0

/** Runs MLServer's CLI with the env's interpreter: `python -m mlserver` does not exist, and the `mlserver` script may not be beside it. */
const MLSERVER_MAIN = 'import sys; from mlserver.cli import main; sys.argv[0] = "mlserver"; sys.exit(main())'

export interface MlserverBackendInput {
  readonly env: Pick<PythonEnv, 'executable'>
  readonly modelDir: string
  /** The number of slots (each one MLServer process); MLServer's own workers stay at MLSERVER_PARALLEL_WORKERS. */
  readonly workers: number
  /** Enforced by mlserve's proxy: MLServer has no request timeout. */
  readonly timeoutSeconds: number
  /** The environment the scorers inherit (MLSERVER_MODEL_NAME, MLSERVER_MODEL_VERSION and other settings are read there). */
  readonly baseEnv: EnvVars
}

/** The model name MLServer serves: MLSERVER_MODEL_NAME when set, else mlflow's default. */
export function mlserverModelName(baseEnv: EnvVars): string {
  return baseEnv.MLSERVER_MODEL_NAME || DEFAULT_MODEL_NAME
}

/**
 * The command for one MLServer process. Its HTTP and gRPC ports are its own (MLServer cannot turn gRPC
 * off); the metrics server, which would take one more port per process, is off (an empty endpoint).
 * MLSERVER_MODEL_VERSION is inherited when set, as mlflow leaves it.
 */
export function mlserverCommand(input: {
  readonly python: string
  readonly modelDir: string
  readonly modelName: string
  readonly httpPort: number
  readonly grpcPort: number
}): ScorerCommand {
  const modelDir = path.resolve(input.modelDir)
  return {
    file: input.python,
    args: ['-c', MLSERVER_MAIN, 'start', modelDir],
    env: {
      MLSERVER_HOST: '127.0.0.1',
      MLSERVER_HTTP_PORT: String(input.httpPort),
      MLSERVER_GRPC_PORT: String(input.grpcPort),
      MLSERVER_METRICS_ENDPOINT: '',
      MLSERVER_PARALLEL_WORKERS: String(MLSERVER_PARALLEL_WORKERS),
      MLSERVER_MODEL_NAME: input.modelName,
      MLSERVER_MODEL_IMPLEMENTATION: 'mlserver_mlflow.MLflowRuntime',
      MLSERVER_MODEL_URI: modelDir,
    },
    server: 'mlserver',
  }
}

/** Two distinct free ports of 127.0.0.1: HTTP and gRPC. */
async function twoPorts(slot: SlotInfo): Promise<[number, number]> {
  const http = await slot.freePort()
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const grpc = await slot.freePort()
    if (grpc !== http) return [http, grpc]
  }
}

export function mlserverBackend(input: MlserverBackendInput): Backend {
  const modelName = mlserverModelName(input.baseEnv)
  return {
    kind: 'mlserver',
    server: 'mlserver',
    // Not /v2/health/ready: MLServer reports ready with no model loaded (MLServer#2056). The model's own
    // ready route answers 200 only once it has loaded.
    readyPath: `/v2/models/${encodeURIComponent(modelName)}/ready`,
    async launch(slot) {
      const [httpPort, grpcPort] = await twoPorts(slot)
      return {
        command: mlserverCommand({python: input.env.executable, modelDir: input.modelDir, modelName, httpPort, grpcPort}),
        endpoint: {kind: 'tcp', port: httpPort},
      }
    },
  }
}
