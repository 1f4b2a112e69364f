// Creates or finds the Python environment that runs the scorer, per env manager.
import type {EnvManager, ModelOptions} from '../config.js'
import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import {probePython, type PythonInfo} from './python.js'

/** A ready environment: the interpreter that runs the scorer, and what it has. */
export interface Env extends PythonInfo {
  readonly manager: EnvManager
  /** The mlflow version, known to be present. */
  readonly mlflowVersion: string
}

/** The `local` manager: the given interpreter as it is (mlflow must already be installed there). */
export async function localEnv(python: string, env: ModelOptions['env']): Promise<Env> {
  const info = await probePython(python, env)
  if (info.mlflowVersion === null) {
    throw new MlserveError('MLFLOW_NOT_FOUND', `mlflow is not installed in the Python interpreter ${info.executable}.`, {
      suggestions: [
        `Install it there (\`${info.executable} -m pip install mlflow\`), or point --python at an interpreter that has mlflow.`,
        'Or let mlserve build the model its own environment with --env-manager virtualenv (with --install-mlflow if the model does not pin mlflow).',
      ],
    })
  }

  return {...info, manager: 'local', mlflowVersion: info.mlflowVersion}
}

/** Prepares the environment the options ask for. */
export async function prepareEnv(options: ModelOptions, log: Logger): Promise<Env> {
  if (options.envManager !== 'local') {
    throw new MlserveError('NOT_AVAILABLE', `The '${options.envManager}' environment manager is not available yet in mlserve.`, {
      suggestions: ['Use --env-manager local with --python pointing at an interpreter that has mlflow and the model\'s dependencies.'],
    })
  }

  if (options.installMlflow) {
    log.warn('--install-mlflow is ignored with --env-manager local (as in mlflow).')
  }

  const phase = log.phase('prepare environment (local)')
  const env = await localEnv(options.python, options.env)
  phase.done(`python ${env.pythonVersion} at ${env.executable}, mlflow ${env.mlflowVersion}`)
  return env
}
