// What the model's OpenAPI document is built from: the MLmodel's signature and params, and its serving input example.
import {readFile} from 'node:fs/promises'

import {messageOf} from '../errors.js'
import type {ResolvedModel} from '../load-model.js'
import type {Logger} from '../log.js'
import {readWarmup} from '../model/warmup.js'
import {parseSchema, type Schema} from '../smoke/signature.js'
import {MODEL_TEXT_MAX_BYTES} from '../util/read-bounded.js'
import {loadBoundedYaml} from '../util/yaml-bounded.js'
import {buildOpenApi, type ModelDescription, type ParamSpec} from './openapi.js'
import type {PlainResponse} from './responses.js'
import {paramRows, schemaRows} from './signature-rows.js'
import type {ServedModelInfo} from './state-gauges.js'

export {OPENAPI_ROUTE} from './openapi.js'

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A signature part as MLflow writes it (a JSON string, or already a list); undefined when absent or unreadable. */
function schemaOf(raw: unknown, what: string, log: Logger): Schema | undefined {
  if (raw === undefined || raw === null) return undefined
  try {
    return parseSchema(raw)
  } catch (error) {
    log.warn(`/openapi.model.json: the signature's ${what} cannot be read (${messageOf(error)}); the document leaves it free-form`)
    return undefined
  }
}

function paramsOf(raw: unknown): ParamSpec[] | undefined {
  if (raw === undefined || raw === null) return undefined
  try {
    const list = typeof raw === 'string' ? (JSON.parse(raw) as unknown) : raw
    if (!Array.isArray(list)) return undefined
    return list.filter((param): param is ParamSpec => isRecord(param) && typeof param.name === 'string' && typeof param.type === 'string')
  } catch {
    return undefined
  }
}

/** Reads what the document says of the model; nothing here fails a start (a bad part is left free-form, with a warning). */
export async function readModelDescription(
  model: ResolvedModel,
  context: {readonly title: string; readonly version?: string; readonly maxBodyBytes: number; readonly log: Logger},
): Promise<ModelDescription> {
  let signature: Record<string, unknown> = {}
  try {
    const text = await readFile(model.mlmodel.path, 'utf8')
    const doc = text.length <= MODEL_TEXT_MAX_BYTES ? loadBoundedYaml(text) : undefined
    if (isRecord(doc) && isRecord(doc.signature)) signature = doc.signature
  } catch (error) {
    context.log.warn(`/openapi.model.json: cannot read the signature of ${model.mlmodel.path}: ${messageOf(error)}`)
  }

  const warmup = await readWarmup(model.ref.localDir, model.mlmodel, {maxBytes: context.maxBodyBytes})
  let example: unknown
  try {
    example = warmup ? (JSON.parse(warmup.body.toString('utf8')) as unknown) : undefined
  } catch {
    example = undefined
  }

  return {
    title: context.title,
    version: context.version,
    flavor: model.flavor,
    inputs: schemaOf(signature.inputs, 'inputs', context.log),
    outputs: schemaOf(signature.outputs, 'outputs', context.log),
    params: paramsOf(signature.params),
    example,
  }
}

/** What serves now: the model and how the public routes name it (credentials hidden, a local model by its directory's name). */
export interface ServingNow {
  readonly model: ResolvedModel
  readonly served: ServedModelInfo
}

/**
 * GET /openapi.model.json's answer for the model: the OpenAPI document, with `x-mlserve-model` (the model's
 * public URI, version, flavor and signature as table rows, for the page that tries it).
 */
export async function openApiDocument(
  now: ServingNow,
  context: Omit<Parameters<typeof readModelDescription>[1], 'version' | 'title'> & {readonly prefix: string},
): Promise<PlainResponse> {
  const {model, served} = now
  // Titled by the public URI (a local model by its directory's name): no host path on the public port.
  const description = await readModelDescription(model, {...context, title: served.uri, version: served.version})
  const document = {
    ...buildOpenApi(description, context.prefix),
    'x-mlserve-model': {
      uri: served.uri,
      version: served.version ?? null,
      run_id: served.runId ?? null,
      generation: served.generation,
      flavor: description.flavor,
      flavors: Object.keys(model.mlmodel.flavors),
      signature: {inputs: schemaRows(description.inputs), outputs: schemaRows(description.outputs), params: paramRows(description.params)},
    },
  }
  return {status: 200, contentType: 'application/json', body: JSON.stringify(document)}
}

/**
 * The route's answer for whichever model serves now: built once per model, so after a reload
 * (--reload-interval, SIGHUP) it describes the new version from its first request on.
 */
export function openApiRoute(current: () => ServingNow, context: Parameters<typeof openApiDocument>[1]): () => Promise<PlainResponse> {
  let built: {model: ResolvedModel; answer: Promise<PlainResponse>} | undefined
  return async () => {
    const now = current()
    if (built?.model !== now.model) built = {model: now.model, answer: openApiDocument(now, context)}
    return built.answer
  }
}
