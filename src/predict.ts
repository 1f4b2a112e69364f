// The orchestrator of `mlserve predict`: the serve pipeline up to the environment, then MLflow's predict script.
import {access, mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
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
  // Without -o the prediction goes through a file of ours, so stdout gets it with a trailing newline.
  const scratch = outputPath ? undefined : await mkdtemp(path.join(tmpdir(), 'mlserve-predict-'))
  try {
    const written = outputPath ?? path.join(scratch!, 'predictions.json')
    const result = await run(env.executable, predictArgs(ref.localDir, {...options, inputPath, outputPath: written}), {
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
        suggestions: inputPath ? inputHints(inputPath) : [],
      })
    }

    if (scratch) {
      const prediction = await readFile(written, 'utf8')
      process.stdout.write(prediction.endsWith('\n') ? prediction : `${prediction}\n`)
    }
  } finally {
    if (scratch) await rm(scratch, {recursive: true, force: true})
  }

  running.done()
}

/** What to say about an input file that failed: mlflow's stored example is not a request body. */
function inputHints(inputPath: string): string[] {
  if (path.basename(inputPath) !== 'input_example.json') return []
  return [
    `input_example.json is the example mlflow stored with the model, not a request body: pass serving_input_example.json from the same directory (${path.join(path.dirname(inputPath), 'serving_input_example.json')}), which is.`,
    'predict takes what POST /invocations takes: JSON with one of dataframe_split, dataframe_records, instances or inputs (e.g. {"dataframe_split": {"columns": [...], "data": [[...]]}}), or CSV with -t csv.',
  ]
}
