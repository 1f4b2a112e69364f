// The model's own OpenAPI 3.1 document (GET /openapi.model.json), built from its MLmodel signature: a pure function.
import type {ColumnSpec, Schema, TensorSpec, ValueType} from '../smoke/signature.js'

/** mlserve's route for the document; mlflow's own /docs and /openapi.json stay the scorer's. */
export const OPENAPI_ROUTE = '/openapi.model.json'

/** One entry of MLmodel's `signature.params`. */
export interface ParamSpec {
  readonly name: string
  readonly type: string
  readonly default?: unknown
  readonly shape?: readonly number[] | null
}

export interface ModelDescription {
  /** What the document calls the model (its URI, redacted). */
  readonly title: string
  readonly version?: string
  readonly flavor: string
  readonly inputs?: Schema
  readonly outputs?: Schema
  readonly params?: readonly ParamSpec[]
  /** The serving input example, parsed (serving_input_example.json). */
  readonly example?: unknown
}

type JsonSchema = Record<string, unknown>

/** MLflow's scalar types (columns and params) as JSON Schema. */
function scalarSchema(type: string): JsonSchema {
  const schemas: Record<string, JsonSchema> = {
    boolean: {type: 'boolean'},
    integer: {type: 'integer', format: 'int32'},
    long: {type: 'integer', format: 'int64'},
    float: {type: 'number', format: 'float'},
    double: {type: 'number', format: 'double'},
    string: {type: 'string'},
    binary: {type: 'string', contentEncoding: 'base64'},
    datetime: {type: 'string', format: 'date-time'},
  }
  return {...(schemas[type] ?? {}), 'x-mlflow-type': type}
}

function valueSchema(type: ValueType): JsonSchema {
  switch (type.kind) {
    case 'scalar': {
      return scalarSchema(type.type)
    }

    case 'array': {
      return {type: 'array', items: valueSchema(type.items)}
    }

    case 'object': {
      const required = type.properties.filter((p) => p.required).map((p) => p.name)
      return {
        type: 'object',
        properties: Object.fromEntries(type.properties.map((p) => [p.name, valueSchema(p.type)])),
        ...(required.length > 0 ? {required} : {}),
      }
    }

    case 'map': {
      return {type: 'object', additionalProperties: valueSchema(type.values)}
    }

    default: {
      return {description: 'Any value (MLflow AnyType).'}
    }
  }
}

/** A numpy dtype's values as JSON Schema. */
function dtypeSchema(dtype: string): JsonSchema {
  const base = /^(u?int|float|bool|str|bytes)/.exec(dtype)?.[1]
  const type =
    base === 'float' ? 'number' : base === 'int' || base === 'uint' ? 'integer' : base === 'bool' ? 'boolean' : base ? 'string' : undefined
  return {...(type ? {type} : {}), 'x-numpy-dtype': dtype}
}

/** Nested arrays for a tensor shape (-1: any size), innermost the dtype. */
function tensorSchema(dtype: string, shape: readonly number[]): JsonSchema {
  let schema = dtypeSchema(dtype)
  for (const size of [...shape].reverse()) {
    schema = {type: 'array', items: schema, ...(size >= 0 ? {minItems: size, maxItems: size} : {})}
  }

  return schema
}

const FREE_FORM: JsonSchema = {
  description: 'The model has no input signature: MLflow accepts any value here and passes it to the model as it is.',
}

/** The four JSON forms MLflow's /invocations accepts, for the model's input schema. */
function requestForms(inputs: Schema | undefined): Record<string, JsonSchema> {
  if (!inputs) {
    return {dataframe_split: FREE_FORM, dataframe_records: FREE_FORM, instances: FREE_FORM, inputs: FREE_FORM}
  }

  if (inputs.kind === 'tensors') return tensorForms(inputs.tensors)
  const named = inputs.columns.filter((column): column is ColumnSpec & {name: string} => column.name !== undefined)
  if (named.length === 0) {
    // Unnamed columns (a model with type hints, a list input): the values one per row.
    const item = inputs.columns.length === 1 ? valueSchema(inputs.columns[0]!.type) : {}
    const rows = {type: 'array', items: item}
    return {
      dataframe_split: {type: 'object', properties: {data: {type: 'array', items: {type: 'array'}}}},
      dataframe_records: rows,
      instances: rows,
      inputs: rows,
    }
  }

  const properties = Object.fromEntries(named.map((column) => [column.name, valueSchema(column.type)]))
  const required = named.filter((column) => column.required).map((column) => column.name)
  const record = {type: 'object', properties, ...(required.length > 0 ? {required} : {})}
  const records = {type: 'array', items: record}
  const split = {
    type: 'object',
    required: ['data'],
    properties: {
      columns: {type: 'array', items: {type: 'string', enum: named.map((column) => column.name)}},
      data: {
        type: 'array',
        items: {type: 'array'},
        description: `Rows of values, in the order of columns: ${named.map((c) => c.name).join(', ')}.`,
      },
      index: {type: 'array'},
    },
  }
  const columnar = {type: 'object', properties: Object.fromEntries(named.map((c) => [c.name, {type: 'array', items: valueSchema(c.type)}]))}
  return {dataframe_split: split, dataframe_records: records, instances: records, inputs: {oneOf: [records, columnar]}}
}

function tensorForms(tensors: readonly TensorSpec[]): Record<string, JsonSchema> {
  const notTabular = {description: 'Not for a tensor model: send instances or inputs.'}
  const [only] = tensors
  if (tensors.length === 1 && only!.name === undefined) {
    const whole = tensorSchema(only!.dtype, only!.shape)
    return {dataframe_split: notTabular, dataframe_records: notTabular, instances: whole, inputs: whole}
  }

  const named = (shapeOf: (t: TensorSpec) => readonly number[]) => ({
    type: 'object',
    properties: Object.fromEntries(tensors.map((t, i) => [t.name ?? String(i), tensorSchema(t.dtype, shapeOf(t))])),
  })
  return {
    dataframe_split: notTabular,
    dataframe_records: notTabular,
    instances: {type: 'array', items: named((t) => t.shape.slice(1))},
    inputs: named((t) => t.shape),
  }
}

function paramsSchema(params: readonly ParamSpec[] | undefined): JsonSchema | undefined {
  if (!params || params.length === 0) return undefined
  const properties = Object.fromEntries(
    params.map((param) => {
      const scalar = scalarSchema(param.type)
      const schema = param.shape ? {type: 'array', items: scalar} : scalar
      return [param.name, {...schema, ...(param.default === undefined ? {} : {default: param.default})}]
    }),
  )
  return {type: 'object', properties, additionalProperties: false, description: "Inference parameters from the model's param schema."}
}

function outputSchema(outputs: Schema | undefined): JsonSchema {
  if (!outputs) return {description: 'The model has no output signature.'}
  if (outputs.kind === 'tensors') return {oneOf: outputs.tensors.map((t) => tensorSchema(t.dtype, t.shape))}
  const [only] = outputs.columns
  if (outputs.columns.length === 1 && only!.name === undefined) return {type: 'array', items: valueSchema(only!.type)}
  return {
    oneOf: [
      {
        type: 'array',
        items: {type: 'object', properties: Object.fromEntries(outputs.columns.map((c, i) => [c.name ?? String(i), valueSchema(c.type)]))},
      },
      {type: 'array'},
    ],
  }
}

const ENVELOPE: JsonSchema = {
  type: 'object',
  required: ['error_code', 'message'],
  properties: {error_code: {type: 'string', examples: ['BAD_REQUEST']}, message: {type: 'string'}, stack_trace: {type: 'string'}},
}

const errorResponse = (description: string) => ({
  description,
  content: {'application/json': {schema: {$ref: '#/components/schemas/ErrorEnvelope'}}},
})

/** The document for one model; `prefix` is --static-prefix ('' for none). */
export function buildOpenApi(model: ModelDescription, prefix = ''): Record<string, unknown> {
  const forms = requestForms(model.inputs)
  const params = paramsSchema(model.params)
  const bodies = Object.entries(forms).map(([key, schema]) => ({
    type: 'object',
    title: key,
    required: [key],
    properties: {[key]: schema, ...(params ? {params: {$ref: '#/components/schemas/Params'}} : {})},
  }))
  const signatureNote = model.inputs
    ? 'The request body forms are derived from the model signature.'
    : 'This model has no signature: the request body is free-form.'
  const json: Record<string, unknown> = {schema: {oneOf: bodies}}
  if (model.example !== undefined) json.example = model.example
  return {
    openapi: '3.1.0',
    info: {
      title: model.title,
      version: model.version ?? 'unversioned',
      description: `MLflow model (flavor ${model.flavor}) served by mlserve. ${signatureNote}`,
    },
    servers: [{url: prefix === '' ? '/' : prefix}],
    paths: {
      '/invocations': {
        post: {
          summary: 'Predict',
          operationId: 'invocations',
          requestBody: {
            required: true,
            content: {
              'application/json': json,
              'text/csv': {schema: {type: 'string', description: 'A CSV table with a header row of column names (pandas.read_csv).'}},
            },
          },
          responses: {
            '200': {
              description: 'The predictions.',
              content: {'application/json': {schema: {type: 'object', properties: {predictions: outputSchema(model.outputs)}}}},
            },
            '400': errorResponse('The input does not match the model (BAD_REQUEST).'),
            '401': errorResponse('An API key is needed (UNAUTHENTICATED), when the server has keys.'),
            '415': {description: 'A content type other than application/json or text/csv.'},
            '500': errorResponse('The model raised an error.'),
            '503': errorResponse('No scorer is ready (TEMPORARILY_UNAVAILABLE).'),
          },
        },
      },
      '/ping': {get: {summary: 'Health check', operationId: 'ping', responses: {'200': {description: 'The model is loaded.'}}}},
      '/version': {
        get: {summary: "The scorer's mlflow version", operationId: 'version', responses: {'200': {description: 'The version.'}}},
      },
    },
    components: {schemas: {ErrorEnvelope: ENVELOPE, ...(params ? {Params: params} : {})}},
  }
}
