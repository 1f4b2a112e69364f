// Reads a model directory's MLmodel file and picks the flavor backend that serves it.
import path from 'node:path'

import {MlserveError, isMlserveError, messageOf} from '../errors.js'
import {MODEL_TEXT_MAX_BYTES, readBoundedText} from '../util/read-bounded.js'
import {loadBoundedYaml} from '../util/yaml-bounded.js'

export interface PyfuncFlavor {
  readonly loaderModule: string
  readonly pythonVersion?: string
  /** `env` as written: a dict {conda, virtualenv} (mlflow >= 2.0) or a conda file path (older). */
  readonly env?: string | Readonly<Record<string, string>>
  /** `streamable: true`: the model implements predict_stream. */
  readonly streamable?: boolean
}

export interface Mlmodel {
  /** Absolute path of the MLmodel file. */
  readonly path: string
  readonly flavors: Readonly<Record<string, unknown>>
  readonly pyfunc?: PyfuncFlavor
  readonly hasCrate: boolean
  readonly mlflowVersion?: string
  /** `saved_input_example_info.serving_input_path`, when the model ships a serving example. */
  readonly servingInputPath?: string
  /** The run that logged the model (MLmodel `run_id`), when it was logged in one. */
  readonly runId?: string
  /** MLmodel `metadata.task` (mlflow writes agent/v1/chat, agent/v2/chat, agent/v1/responses for GenAI models). */
  readonly task?: string
}

/** The flavor a model is served by (not to be confused with the scorer backend of scorer/backend.ts). */
export type FlavorKind = 'pyfunc' | 'crate'

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

const optionalString = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined

/** Parses MLmodel text; `file` is only used in messages. */
export function parseMlmodel(text: string, file: string): Mlmodel {
  let doc: unknown
  try {
    doc = loadBoundedYaml(text)
  } catch (error) {
    throw new MlserveError('MLMODEL_INVALID', `Could not parse ${file}: ${messageOf(error)}`, {
      cause: error,
      suggestions: ['Fix the YAML syntax, or save the model again with mlflow.'],
    })
  }

  if (!isRecord(doc)) {
    throw new MlserveError('MLMODEL_INVALID', `${file} is not a YAML mapping.`, {
      suggestions: ['An MLmodel file is a YAML mapping with a `flavors` key; save the model again with mlflow.'],
    })
  }

  const flavors = doc.flavors
  if (!isRecord(flavors)) {
    throw new MlserveError('MLMODEL_INVALID', `${file} has no \`flavors\` mapping.`, {
      suggestions: ['Save the model again with mlflow.'],
    })
  }

  const info = doc.saved_input_example_info
  return {
    path: file,
    flavors,
    pyfunc: flavors.python_function === undefined ? undefined : parsePyfunc(flavors.python_function, file),
    hasCrate: flavors.crate !== undefined,
    mlflowVersion: optionalString(doc.mlflow_version),
    servingInputPath: isRecord(info) ? optionalString(info.serving_input_path) : undefined,
    runId: optionalString(doc.run_id) || undefined,
    task: isRecord(doc.metadata) ? optionalString(doc.metadata.task) : undefined,
  }
}

function parsePyfunc(flavor: unknown, file: string): PyfuncFlavor {
  if (!isRecord(flavor) || typeof flavor.loader_module !== 'string' || flavor.loader_module === '') {
    throw new MlserveError('MLMODEL_INVALID', `${file}: the python_function flavor has no \`loader_module\`.`, {
      suggestions: ['Save the model again with mlflow.pyfunc.save_model or log_model.'],
    })
  }

  const {env} = flavor
  let parsedEnv: PyfuncFlavor['env']
  if (typeof env === 'string') parsedEnv = env
  else if (isRecord(env)) {
    parsedEnv = Object.fromEntries(Object.entries(env).flatMap(([key, value]) => (typeof value === 'string' ? [[key, value]] : [])))
  }

  return {
    loaderModule: flavor.loader_module,
    pythonVersion: optionalString(flavor.python_version),
    env: parsedEnv,
    streamable: flavor.streamable === true || undefined,
  }
}

/** Reads `<dir>/MLmodel`. */
export async function readMlmodel(modelDir: string): Promise<Mlmodel> {
  const file = path.join(modelDir, 'MLmodel')
  let text: string
  try {
    text = await readBoundedText(file, {maxBytes: MODEL_TEXT_MAX_BYTES, code: 'MLMODEL_INVALID', what: file})
  } catch (error) {
    if (isMlserveError(error)) throw error
    throw new MlserveError('MODEL_NOT_FOUND', `Could not find an "MLmodel" configuration file at "${modelDir}"`, {
      cause: error,
      suggestions: ['Pass the directory that mlflow saved the model to (the one that contains MLmodel).'],
    })
  }

  return parseMlmodel(text, file)
}
