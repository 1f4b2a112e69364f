// Builds the argv and environment that start MLflow's own pyfunc scoring server for a model: one process.
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {MlserveError} from '../errors.js'
import type {PythonEnv} from '../env/env.js'
import {TEMPLATES_DIR} from '../paths.js'
import type {Backend} from './backend.js'
import type {ScorerCommand} from './command.js'
import {frameSocketFor} from './frame-dispatcher.js'
import {isAtLeast} from '../util/version.js'

export interface PyfuncScorerInput {
  readonly env: Pick<PythonEnv, 'executable' | 'mlflowVersion' | 'uvicorn' | 'gunicorn'>
  readonly modelDir: string
  /** The Unix socket the scorer listens on (only the proxy talks to it). */
  readonly socketPath: string
  readonly timeoutSeconds: number
  /**
   * Serve mlserve_lean:app (MLflow's app with a lean /invocations, plus POST /invocations as frames on a
   * socket of its own: the lean protocol) instead of MLflow's app module.
   */
  readonly fastPath?: boolean
}

/**
 * uvicorn's --app-dir for the fast path: a directory holding only mlserve's app modules, since it goes first
 * on the scorer's sys.path (a model's own `import probe` must not find mlserve's probe.py).
 */
export const PYTHON_APP_DIR = path.join(TEMPLATES_DIR, 'python', 'app')

/** mlflow serves its FastAPI app with uvicorn from 2.21.0; before that, its Flask app with gunicorn. */
export const FASTAPI_SCORER_SINCE = '2.21.0'

/** The variables mlflow's own launcher sets for the scoring server. */
export function scorerEnv(modelDir: string, timeoutSeconds: number, fastPath = false): Record<string, string> {
  return {
    __pyfunc_model_path__: pathToFileURL(modelDir).href,
    MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: String(timeoutSeconds),
    // Read by the preload loader: which app module its forks serve.
    ...(fastPath ? {MLSERVE_FAST_PATH: '1'} : {}),
  }
}

export function pyfuncScorerCommand(input: PyfuncScorerInput): ScorerCommand {
  const {env, modelDir, socketPath, timeoutSeconds} = input
  const python = env.executable

  if (isAtLeast(env.mlflowVersion, FASTAPI_SCORER_SINCE)) {
    if (!env.uvicorn) throw missingServer('uvicorn', env.mlflowVersion, python)
    const fastPath = input.fastPath === true
    return {
      file: python,
      // One process: mlserve runs -w of them itself. The access log is mlserve's (uvicorn's costs Python
      // time on the thread that serves every request).
      args: [
        '-m',
        'uvicorn',
        '--uds',
        socketPath,
        '--no-access-log',
        ...(fastPath ? ['--app-dir', PYTHON_APP_DIR, 'mlserve_lean:app'] : ['mlflow.pyfunc.scoring_server.app:app']),
      ],
      env: {
        ...scorerEnv(modelDir, timeoutSeconds, fastPath),
        // mlserve_lean listens for frames there, once the model is loaded (before uvicorn listens).
        ...(fastPath && socketPath ? {MLSERVE_FRAME_SOCKET: frameSocketFor(socketPath)} : {}),
      },
      server: 'uvicorn',
    }
  }

  const variables = scorerEnv(modelDir, timeoutSeconds)

  if (!env.gunicorn) throw missingServer('gunicorn', env.mlflowVersion, python)
  // gunicorn reads GUNICORN_CMD_ARGS from the environment itself, as it did under mlflow.
  return {
    file: python,
    args: [
      '-m',
      'gunicorn',
      `--timeout=${timeoutSeconds}`,
      '-b',
      `unix:${socketPath}`,
      '-w',
      '1',
      '--',
      'mlflow.pyfunc.scoring_server.wsgi:app',
    ],
    env: variables,
    server: 'gunicorn',
  }
}

function missingServer(server: string, mlflowVersion: string, python: string): MlserveError {
  return new MlserveError(
    'SCORER_DEPENDENCY_MISSING',
    `mlflow ${mlflowVersion} serves models with ${server}, which is not installed in ${python}.`,
    {suggestions: [`Install it there (\`${python} -m pip install ${server}\`).`]},
  )
}

/** Whether the scorers of `input` speak the lean protocol beside HTTP (the fast path of a FastAPI scorer). */
export function speaksFrames(input: Pick<PyfuncScorerInput, 'env' | 'fastPath'>): boolean {
  return input.fastPath === true && isAtLeast(input.env.mlflowVersion, FASTAPI_SCORER_SINCE)
}

/** MLflow's pyfunc scoring server as a Backend: one uvicorn (or gunicorn) process per slot, on a Unix socket. */
export function pyfuncBackend(input: Omit<PyfuncScorerInput, 'socketPath'>): Backend {
  // Built once up front so a missing uvicorn/gunicorn fails before the proxy binds.
  const {server} = pyfuncScorerCommand({...input, socketPath: ''})
  return {
    kind: 'pyfunc',
    server,
    readyPath: '/ping',
    async launch(slot) {
      return {
        command: pyfuncScorerCommand({...input, socketPath: slot.socketPath}),
        endpoint: {
          kind: 'unix',
          socketPath: slot.socketPath,
          ...(speaksFrames(input) ? {frameSocket: frameSocketFor(slot.socketPath)} : {}),
        },
      }
    },
  }
}
