// The model's serving input example, read defensively for the warm-up prediction.
import path from 'node:path'

import {messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import {dirRoot, resolveInside} from '../util/fs.js'
import {readBounded} from '../util/read-bounded.js'
import type {Mlmodel} from './mlmodel.js'

/** A prediction sent to each scorer before it takes traffic. */
export interface WarmupRequest {
  readonly body: Buffer
  readonly contentType: string
  /** Where it came from, for logs. */
  readonly source: string
}

/** The loaders of MLflow's GenAI model classes (ChatModel, ChatAgent, ResponsesAgent). */
const GENAI_LOADERS = new Set(['mlflow.pyfunc.loaders.chat_model', 'mlflow.pyfunc.loaders.chat_agent', 'mlflow.pyfunc.loaders.responses_agent'])

/**
 * Why serve does not warm this model up, or undefined when it does: a GenAI model (MLmodel task agent/...,
 * or one of MLflow's GenAI loaders) ships an example mlflow wrote for it ("Hello!"), and predicting it
 * would call the model's LLM at every scorer start (paid, and fatal when the LLM is unreachable, where
 * mlflow serves and answers each request with its error).
 */
export function genaiWarmupSkip(mlmodel: Mlmodel): string | undefined {
  const loader = mlmodel.pyfunc?.loaderModule
  if (!mlmodel.task?.startsWith('agent/') && !(loader !== undefined && GENAI_LOADERS.has(loader))) return undefined
  return `it is a GenAI model (${mlmodel.task ?? loader}): its example would call its LLM at every scorer start`
}

/** The largest warm-up example read when --max-body-size is 0 (no limit). */
const WARMUP_MAX_BYTES = 1024 * 1024 * 1024

/**
 * The model's serving input example (MLmodel's serving_input_path, else the usual file name), if any. It
 * must be a regular file inside the model directory once symlinks are resolved, and no larger than a
 * request may be (--max-body-size): anything else is reported and the warm-up skipped, never read.
 */
export async function readWarmup(
  modelDir: string,
  mlmodel: Mlmodel,
  options: {readonly maxBytes?: number; readonly log?: Logger} = {},
): Promise<WarmupRequest | undefined> {
  const name = mlmodel.servingInputPath ?? 'serving_input_example.json'
  const file = path.resolve(modelDir, name)
  const skip = (why: string) => {
    options.log?.warn(`not warming up with ${name}: ${why}; ready as soon as /ping answers`)
    return undefined
  }

  const {inside, real} = await resolveInside(await dirRoot(modelDir), file)
  if (!inside) {
    return skip(`it is outside the model directory (${real ?? file})`)
  }

  if (real === undefined) {
    options.log?.info(`no ${name} in the model: ready as soon as /ping answers`)
    return undefined
  }

  const maxBytes = options.maxBytes && options.maxBytes > 0 ? options.maxBytes : WARMUP_MAX_BYTES
  try {
    const rule = `the warm-up reads only a regular file of at most --max-body-size (${maxBytes} bytes)`
    const body = await readBounded(real, {maxBytes, code: 'WARMUP_FAILED', what: name, rule})
    return {body, contentType: 'application/json', source: name}
  } catch (error) {
    return skip(messageOf(error))
  }
}
