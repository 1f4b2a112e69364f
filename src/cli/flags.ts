// Flags shared by the commands, declared once with mlflow's names, defaults and environment variables.
import {Flags} from '@oclif/core'

import {ENV_MANAGERS, effectiveEnvManager, type EnvManager, type ModelOptions} from '../config.js'

export const modelFlags = {
  'model-uri': Flags.string({
    char: 'm',
    required: true,
    summary: 'The model: a directory, file:, runs:/, models:/, mlflow-artifacts:/ or another artifact URI.',
    description:
      'A local directory that holds an MLmodel file or a file: URI (used in place); runs:/<run_id>/<path>; models:/<name>/<version|stage|latest>, models:/<name>@<alias> or models:/<model_id>; mlflow-artifacts:/ and http(s):// artifact URIs; or any scheme the mlflow client handles (s3://, gs://, ...). Registry and tracking lookups use MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI (default: ./mlruns if it holds experiments, else sqlite:///mlflow.db), credentials from MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN.',
  }),
  'env-manager': Flags.option({
    options: ENV_MANAGERS,
    default: 'virtualenv' as EnvManager,
    summary: 'How to provide the Python environment the model runs in.',
    description:
      "local: use --python as it is (mlflow and the model's dependencies must be installed there). " +
      "virtualenv (mlflow's default), uv and conda: build the model's own environment from its python_env.yaml / conda.yaml (R crate models run with the system R: the manager does not apply).",
  })(),
  'no-conda': Flags.boolean({
    default: false,
    summary: 'Same as --env-manager local (kept from mlflow).',
  }),
  'install-mlflow': Flags.boolean({
    default: false,
    summary: "Install mlflow into the model's environment (ignored with --env-manager local, as in mlflow).",
  }),
  speedups: Flags.boolean({
    default: true,
    allowNo: true,
    env: 'MLSERVE_SPEEDUPS',
    summary: "Install uvloop and httptools into the environments mlserve builds, so the scorer's uvicorn uses them.",
    description:
      "mlflow depends on plain uvicorn, which parses HTTP in pure Python; with its C event loop and parser the same scorer answers sooner. Part of the environment cache key. --no-speedups builds exactly the model's requirements (plus mlflow with --install-mlflow). Never applies to --env-manager local.",
  }),
  'build-timeout': Flags.integer({
    env: 'MLSERVE_BUILD_TIMEOUT',
    default: 1800,
    min: 0,
    summary: "Seconds building the model's environment may take (0: no limit).",
    description:
      'Past it the installer (its whole process group) is stopped, nothing half-built is kept, and mlserve exits with BUILD_TIMEOUT (71). Waiting for another process that builds the same environment is bounded separately by MLSERVE_LOCK_TIMEOUT.',
  }),
  python: Flags.string({
    env: 'MLSERVE_PYTHON',
    default: 'python3',
    summary: 'The Python interpreter the local env manager uses, and that resolves models:/ and other URIs through the mlflow client.',
    description:
      "A path or a command on PATH. With --env-manager local it runs the scorers and must have mlflow installed (and uvicorn, which mlflow depends on). Whatever the manager, mlserve runs mlflow's own client in it for what it does not read itself: registry lookups (models:/ aliases, stages, latest) and downloads from sqlite, cloud or plugin stores; plain file and REST stores need no Python.",
  }),
}

export interface ModelFlagValues {
  'model-uri': string
  'env-manager': EnvManager
  'no-conda': boolean
  'install-mlflow': boolean
  speedups: boolean
  'build-timeout': number
  python: string
}

export function modelOptionsFrom(flags: ModelFlagValues): ModelOptions {
  return {
    modelUri: flags['model-uri'],
    envManager: effectiveEnvManager(flags['env-manager'], flags['no-conda']),
    installMlflow: flags['install-mlflow'],
    speedups: flags.speedups,
    buildTimeoutMs: flags['build-timeout'] * 1000,
    python: flags.python,
    cwd: process.cwd(),
    env: process.env,
  }
}
