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

/** GET /openapi.model.json's answer for the model. */
export async function openApiRoute(
  model: ResolvedModel,
  context: Parameters<typeof readModelDescription>[1] & {readonly prefix: string},
): Promise<PlainResponse> {
  const document = buildOpenApi(await readModelDescription(model, context), context.prefix)
  return {status: 200, contentType: 'application/json', body: JSON.stringify(document)}
}
