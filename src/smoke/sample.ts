// Request bodies built from a model's input schema: one row of typed sample values, and one with a column missing.
import type {ColumnSpec, DataType, Schema, TensorSpec, ValueType} from './signature.js'

const SCALAR_SAMPLES: Record<DataType, unknown> = {
  boolean: true,
  integer: 1,
  long: 1,
  float: 0.5,
  double: 0.5,
  string: 'a',
  binary: 'YQ==',
  datetime: '2024-01-01T00:00:00',
}

/** A value of the given type. */
export function sampleValue(type: ValueType): unknown {
  switch (type.kind) {
    case 'scalar': {
      return SCALAR_SAMPLES[type.type]
    }

    case 'array': {
      return [sampleValue(type.items)]
    }

    case 'map': {
      return {key: sampleValue(type.values)}
    }

    case 'object': {
      return Object.fromEntries(type.properties.map((property) => [property.name, sampleValue(property.type)]))
    }

    case 'any': {
      return 'a'
    }
  }
}

function sampleElement(dtype: string): unknown {
  if (dtype.startsWith('int') || dtype.startsWith('uint')) return 1
  if (dtype.startsWith('float')) return 0.5
  if (dtype === 'bool') return true
  return 'a'
}

/** An array of the tensor's shape (every -1 dimension of size 1) filled with one sample element. */
function sampleTensor(tensor: TensorSpec): unknown {
  const build = (depth: number): unknown =>
    depth === tensor.shape.length
      ? sampleElement(tensor.dtype)
      : Array.from({length: Math.max(tensor.shape[depth] === -1 ? 1 : tensor.shape[depth]!, 0)}, () => build(depth + 1))
  return build(0)
}

const named = (columns: readonly ColumnSpec[]) => columns.length > 0 && columns.every((column) => column.name !== undefined)

/** One row of sample values as a JSON body /invocations accepts, or undefined for an empty schema. */
export function sampleBody(schema: Schema): string | undefined {
  if (schema.kind === 'tensors') {
    const [first] = schema.tensors
    if (!first) return undefined
    if (schema.tensors.length === 1 && first.name === undefined) return JSON.stringify({inputs: sampleTensor(first)})
    return JSON.stringify({
      inputs: Object.fromEntries(schema.tensors.map((tensor, index) => [tensor.name ?? String(index), sampleTensor(tensor)])),
    })
  }

  const {columns} = schema
  if (columns.length === 0) return undefined
  if (named(columns)) {
    return JSON.stringify({
      dataframe_split: {columns: columns.map((column) => column.name), data: [columns.map((column) => sampleValue(column.type))]},
    })
  }

  if (columns.length === 1) return JSON.stringify({inputs: [sampleValue(columns[0]!.type)]})
  return JSON.stringify({dataframe_split: {data: [columns.map((column) => sampleValue(column.type))]}})
}

/**
 * A body the schema rejects: one sample row without its first required column, with the column's name;
 * undefined when the schema has no required named column to leave out.
 */
export function missingColumnBody(schema: Schema): {readonly body: string; readonly column: string} | undefined {
  if (schema.kind !== 'columns' || !named(schema.columns)) return undefined
  const missing = schema.columns.find((column) => column.required)
  if (!missing) return undefined
  const rest = schema.columns.filter((column) => column !== missing)
  return {
    body: JSON.stringify({
      dataframe_split: {columns: rest.map((column) => column.name), data: [rest.map((column) => sampleValue(column.type))]},
    }),
    column: missing.name!,
  }
}
