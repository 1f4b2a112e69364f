// A model's signature as MLflow writes it in MLmodel (column specs and tensor specs), parsed into plain data.
import {readFile} from 'node:fs/promises'

import {load} from 'js-yaml'

import {messageOf} from '../errors.js'

/** MLflow's scalar column types (mlflow.types.DataType). */
export const DATA_TYPES = ['boolean', 'integer', 'long', 'float', 'double', 'string', 'binary', 'datetime'] as const
export type DataType = (typeof DATA_TYPES)[number]

/** The type of one column's values: a scalar, or one of MLflow's Array, Object, Map and AnyType. */
export type ValueType =
  | {readonly kind: 'scalar'; readonly type: DataType}
  | {readonly kind: 'array'; readonly items: ValueType}
  | {readonly kind: 'object'; readonly properties: readonly Property[]}
  | {readonly kind: 'map'; readonly values: ValueType}
  | {readonly kind: 'any'}

export interface Property {
  readonly name: string
  readonly type: ValueType
  readonly required: boolean
}

export interface ColumnSpec {
  readonly name?: string
  readonly type: ValueType
  readonly required: boolean
}

export interface TensorSpec {
  readonly name?: string
  /** A numpy dtype name: float64, int32, bool, str, object, ... */
  readonly dtype: string
  /** -1 for a dimension of any size. */
  readonly shape: readonly number[]
}

export type Schema =
  {readonly kind: 'columns'; readonly columns: readonly ColumnSpec[]} | {readonly kind: 'tensors'; readonly tensors: readonly TensorSpec[]}

export interface Signature {
  readonly inputs?: Schema
  readonly outputs?: Schema
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Parses one schema as MLflow serializes it (a JSON list of specs, or that list already parsed). */
export function parseSchema(raw: unknown): Schema {
  const specs = typeof raw === 'string' ? (JSON.parse(raw) as unknown) : raw
  if (!Array.isArray(specs)) throw new Error('a schema is a list of column or tensor specs')
  if (specs.some((spec) => isRecord(spec) && spec.type === 'tensor')) {
    return {kind: 'tensors', tensors: specs.map((spec) => parseTensor(spec))}
  }

  return {
    kind: 'columns',
    columns: specs.map((spec) => {
      if (!isRecord(spec)) throw new Error(`not a column spec: ${JSON.stringify(spec)}`)
      return {
        name: typeof spec.name === 'string' ? spec.name : undefined,
        type: parseValueType(spec),
        required: spec.required !== false,
      }
    }),
  }
}

function parseTensor(spec: unknown): TensorSpec {
  const tensor = isRecord(spec) ? spec['tensor-spec'] : undefined
  if (!isRecord(spec) || !isRecord(tensor) || typeof tensor.dtype !== 'string' || !Array.isArray(tensor.shape)) {
    throw new Error(`not a tensor spec: ${JSON.stringify(spec)}`)
  }

  return {
    name: typeof spec.name === 'string' ? spec.name : undefined,
    dtype: tensor.dtype,
    shape: tensor.shape.map((dim) => (typeof dim === 'number' ? dim : -1)),
  }
}

function parseValueType(spec: Record<string, unknown>): ValueType {
  const {type} = spec
  if (type === 'array') {
    if (!isRecord(spec.items)) throw new Error(`an array spec without items: ${JSON.stringify(spec)}`)
    return {kind: 'array', items: parseValueType(spec.items)}
  }

  if (type === 'object') {
    const properties = isRecord(spec.properties) ? spec.properties : {}
    return {
      kind: 'object',
      properties: Object.entries(properties).map(([name, property]) => {
        if (!isRecord(property)) throw new Error(`not a property spec: ${JSON.stringify(property)}`)
        return {name, type: parseValueType(property), required: property.required !== false}
      }),
    }
  }

  if (type === 'map') {
    if (!isRecord(spec.values)) throw new Error(`a map spec without values: ${JSON.stringify(spec)}`)
    return {kind: 'map', values: parseValueType(spec.values)}
  }

  if (type === 'any') return {kind: 'any'}
  if (typeof type === 'string' && (DATA_TYPES as readonly string[]).includes(type)) return {kind: 'scalar', type: type as DataType}
  throw new Error(`unknown column type ${JSON.stringify(type)}`)
}

/**
 * The `signature` of an MLmodel file, or undefined when it has none. A signature mlserve cannot parse is
 * reported through `warn` and treated as absent (the smoke test then says the schema was not checked).
 */
export async function readSignature(mlmodelPath: string, warn: (message: string) => void): Promise<Signature | undefined> {
  let doc: unknown
  try {
    doc = load(await readFile(mlmodelPath, 'utf8'))
  } catch (error) {
    warn(`could not read the signature in ${mlmodelPath}: ${messageOf(error)}`)
    return undefined
  }

  const signature = isRecord(doc) ? doc.signature : undefined
  if (!isRecord(signature)) return undefined
  const part = (key: 'inputs' | 'outputs'): Schema | undefined => {
    const raw = signature[key]
    if (raw === undefined || raw === null) return undefined
    try {
      return parseSchema(raw)
    } catch (error) {
      warn(`could not parse the signature's ${key} in ${mlmodelPath}: ${messageOf(error)}`)
      return undefined
    }
  }

  return {inputs: part('inputs'), outputs: part('outputs')}
}
