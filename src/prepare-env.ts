// The orchestrator of `mlserve prepare-env`: the serve pipeline up to the environment, built (or found) and released.
import type {PrepareEnvOptions} from './config.js'
import {prepareEnv} from './env/env.js'
import {MlserveError} from './errors.js'
import {loadModel} from './load-model.js'
import type {Logger} from './log.js'

export interface PrepareEnvIo {
  readonly log: Logger
  /** Aborts the build (SIGINT/SIGTERM): nothing half-built is kept. */
  readonly signal?: AbortSignal
}

/** Builds the environment `serve` would use; returns its interpreter, or undefined for an R crate model. */
export async function prepareModelEnv(options: PrepareEnvOptions, io: PrepareEnvIo): Promise<string | undefined> {
  const {log, signal} = io
  if (options.envManager === 'local') {
    throw new MlserveError('INVALID_ARGUMENT', 'Prepare env should not be called with local env manager!', {
      suggestions: ['Use --env-manager virtualenv, uv or conda: the local manager has no environment to prepare.'],
    })
  }

  const {ref, mlmodel, flavor} = await loadModel(options.modelUri, options.cwd, log, {env: options.env, signal, python: options.python})
  if (flavor === 'crate') {
    log.info('an R crate model has no Python environment to prepare: it runs with the system R')
    return undefined
  }

  const serverPackages = options.enableMlserver ? (await import('./scorer/mlserver.js')).MLSERVER_PACKAGES : undefined
  const env = await prepareEnv({options, modelDir: ref.localDir, mlmodel, log, signal, serverPackages})
  await env.release()
  return env.executable
}
