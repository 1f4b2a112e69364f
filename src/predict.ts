// The orchestrator of `mlserve predict`: the serve pipeline up to the environment, then MLflow's predict script.
import {access} from 'node:fs/promises'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import type {PredictOptions} from './config.js'
import {prepareEnv} from './env/env.js'
import {MlserveError} from './errors.js'
import type {Logger} from './log.js'
import {describeFailure, run} from './util/exec.js'
import {loadModel} from './load-model.js'

/** The argv that runs mlflow's own batch prediction entry point in the model's interpreter. */
export function predictArgs(modelDir: string, options: Pick<PredictOptions, 'contentType' | 'inputPath' | 'outputPath'>): string[] {
  return [
    '-m',
    'mlflow.pyfunc._mlflow_pyfunc_backend_predict',
    '--model-uri',
    pathToFileURL(modelDir).href,
    '--content-type',
    options.contentType,
    ...(options.inputPath ? ['--input-path', options.inputPath] : []),
    ...(options.outputPath ? ['--output-path', options.outputPath] : []),
  ]
}

export async function predict(options: PredictOptions, io: {log: Logger}): Promise<void> {
  const {log} = io
  const inputPath = options.inputPath ? path.resolve(options.cwd, options.inputPath) : undefined
  const outputPath = options.outputPath ? path.resolve(options.cwd, options.outputPath) : undefined
  if (inputPath) {
    await access(inputPath).catch((error: unknown) => {
      throw new MlserveError('INPUT_NOT_FOUND', `The input file does not exist or cannot be read: ${inputPath}`, {cause: error})
    })
  }

  const {ref, mlmodel} = await loadModel(options.modelUri, options.cwd, log, {env: options.env, python: options.python})
  const env = await prepareEnv({options, modelDir: ref.localDir, mlmodel, log})

  const running = log.phase('predict')
  const result = await run(env.executable, predictArgs(ref.localDir, {...options, inputPath, outputPath}), {
    env: {...options.env, ...options.extraEnv},
    cwd: options.cwd,
    stdin: inputPath ? 'ignore' : 'inherit',
    stdout: 'inherit',
    stderr: 'inherit',
  })
  await env.release()
  if (result.exitCode !== 0) {
    throw new MlserveError('PREDICT_FAILED', `The prediction failed (${describeFailure(env.executable, result)}); its output is above.`, {
      exitCode: result.exitCode && result.exitCode > 0 ? result.exitCode : undefined,
    })
  }

  running.done()
}
