// The model's signature as table rows (name, type, required or shape), for the page that tries the model: a pure function.
import type {Schema, ValueType} from '../smoke/signature.js'
import type {ParamSpec} from './openapi.js'

/** One row of the signature table. */
export interface SignatureRow {
  readonly name: string | null
  /** MLflow's type as it writes it: `double`, `Array(string)`, `Object(a: long)`, `Map(str -> double)`, `tensor float64`. */
  readonly type: string
  readonly required?: boolean
  /** A tensor's shape (-1: any size). */
  readonly shape?: readonly number[]
  /** A param's default. */
  readonly default?: unknown
}

/** MLflow's own spelling of a column's type. */
export function describeType(type: ValueType): string {
  switch (type.kind) {
    case 'scalar': {
      return type.type
    }

    case 'array': {
      return `Array(${describeType(type.items)})`
    }

    case 'object': {
      return `Object(${type.properties.map((p) => `${p.name}: ${describeType(p.type)}${p.required ? '' : ' (optional)'}`).join(', ')})`
    }

    case 'map': {
      return `Map(str -> ${describeType(type.values)})`
    }

    default: {
      return 'Any'
    }
  }
}

/** A schema's rows; null when the signature has no such part. */
export function schemaRows(schema: Schema | undefined): SignatureRow[] | null {
  if (!schema) return null
  if (schema.kind === 'tensors') return schema.tensors.map((t) => ({name: t.name ?? null, type: `tensor ${t.dtype}`, shape: t.shape}))
  return schema.columns.map((c) => ({name: c.name ?? null, type: describeType(c.type), required: c.required}))
}

/** The param schema's rows (empty: no params). */
export function paramRows(params: readonly ParamSpec[] | undefined): SignatureRow[] {
  return (params ?? []).map((p) => ({
    name: p.name,
    type: p.shape ? `Array(${p.type})` : p.type,
    ...(p.default === undefined ? {} : {default: p.default}),
  }))
}
