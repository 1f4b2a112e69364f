// Whether a model's predictions (as the scorer returns them in JSON) conform to its output schema.
import type {ColumnSpec, DataType, Schema, TensorSpec, ValueType} from './signature.js'

/** At most this many violations are listed: the first few say what is wrong. */
const MAX_VIOLATIONS = 5

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A value for messages: JSON, cut short. */
export function show(value: unknown, max = 80): string {
  let text: string
  try {
    text = typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value))
  } catch {
    text = String(value)
  }

  return text.length > max ? `${text.slice(0, max - 3)}...` : text
}

class Violations {
  readonly list: string[] = []
  add(message: string): void {
    if (this.list.length < MAX_VIOLATIONS) this.list.push(message)
  }

  get full(): boolean {
    return this.list.length >= MAX_VIOLATIONS
  }
}

/** The ways `predictions` violate `schema` (empty when it conforms). */
export function checkPredictions(schema: Schema, predictions: unknown): string[] {
  const violations = new Violations()
  if (schema.kind === 'tensors') checkTensors(schema.tensors, predictions, violations)
  else checkColumns(schema.columns, predictions, violations)
  return violations.list
}

const columnLabel = (column: ColumnSpec, index: number) => (column.name === undefined ? `column ${index}` : `column '${column.name}'`)

function checkColumns(columns: readonly ColumnSpec[], predictions: unknown, out: Violations): void {
  const named = columns.length > 0 && columns.every((column) => column.name !== undefined)
  const isRow = (value: unknown): value is Record<string, unknown> => named && isRecord(value) && columns.some((column) => column.name! in value)
  const single = columns.length === 1 ? columns[0] : undefined

  if (Array.isArray(predictions)) {
    for (const [index, row] of predictions.entries()) {
      if (out.full) return
      const where = `prediction ${index}`
      if (isRow(row)) checkRecord(columns, row, where, out)
      else if (single) checkValue(single.type, row, single.required, `${where} (${columnLabel(single, 0)})`, out)
      else if (Array.isArray(row)) {
        if (row.length !== columns.length) out.add(`${where}: expected ${columns.length} columns, got ${row.length}: ${show(row)}`)
        else
          for (const [at, column] of columns.entries())
            checkValue(column.type, row[at], column.required, `${where}, ${columnLabel(column, at)}`, out)
      } else out.add(`${where}: expected a row of ${columns.length} columns, got ${show(row)}`)
    }

    return
  }

  if (isRow(predictions)) {
    // A dict of columns: {"name": [values]} (MLflow's JSON for a dict of arrays), or one record.
    const columnar = columns.every((column) => !(column.name! in predictions) || Array.isArray(predictions[column.name!]))
    if (!columnar || columns.some((column) => column.type.kind === 'array')) {
      checkRecord(columns, predictions, 'the prediction', out)
      return
    }

    checkKeys(columns, predictions, 'the predictions', out)
    for (const column of columns) {
      const values = predictions[column.name!]
      if (!Array.isArray(values)) continue
      for (const [index, value] of values.entries())
        checkValue(column.type, value, column.required, `${columnLabel(column, 0)}, row ${index}`, out)
    }

    return
  }

  if (single) checkValue(single.type, predictions, single.required, `the prediction (${columnLabel(single, 0)})`, out)
  else out.add(`expected ${columns.length} columns, got ${show(predictions)}`)
}

function checkKeys(columns: readonly ColumnSpec[], record: Record<string, unknown>, where: string, out: Violations): void {
  for (const column of columns) {
    if (column.required && !(column.name! in record)) out.add(`${where}: missing column '${column.name}'`)
  }

  const known = new Set(columns.map((column) => column.name))
  for (const key of Object.keys(record)) {
    if (!known.has(key)) out.add(`${where}: unexpected column '${key}' (the schema has ${[...known].map((name) => `'${name}'`).join(', ')})`)
  }
}

function checkRecord(columns: readonly ColumnSpec[], record: Record<string, unknown>, where: string, out: Violations): void {
  checkKeys(columns, record, where, out)
  for (const column of columns) {
    if (column.name! in record) checkValue(column.type, record[column.name!], column.required, `${where}, column '${column.name}'`, out)
  }
}

/** Whether a JSON value is of an MLflow scalar type, as MLflow's scorer writes it. */
export function isOfType(type: DataType, value: unknown): boolean {
  switch (type) {
    case 'boolean': {
      return typeof value === 'boolean'
    }

    case 'integer': {
      return Number.isInteger(value) && Math.abs(value as number) <= 2 ** 31
    }

    case 'long': {
      return Number.isInteger(value)
    }

    case 'float':
    case 'double': {
      return typeof value === 'number'
    }

    case 'string':
    case 'binary': {
      return typeof value === 'string'
    }

    case 'datetime': {
      return typeof value === 'string' && !Number.isNaN(Date.parse(value))
    }
  }
}

const describeType = (type: ValueType): string =>
  type.kind === 'scalar' ? type.type : type.kind === 'array' ? `array<${describeType(type.items)}>` : type.kind

function checkValue(type: ValueType, value: unknown, required: boolean, where: string, out: Violations): void {
  if (value === null || value === undefined) {
    if (required) out.add(`${where}: expected ${describeType(type)}, got null`)
    return
  }

  switch (type.kind) {
    case 'any': {
      return
    }

    case 'scalar': {
      if (!isOfType(type.type, value)) out.add(`${where}: expected ${type.type}, got ${show(value)}`)
      return
    }

    case 'array': {
      if (!Array.isArray(value)) out.add(`${where}: expected ${describeType(type)}, got ${show(value)}`)
      else for (const [index, item] of value.entries()) checkValue(type.items, item, true, `${where}[${index}]`, out)
      return
    }

    case 'map': {
      if (!isRecord(value)) out.add(`${where}: expected a map, got ${show(value)}`)
      else for (const [key, item] of Object.entries(value)) checkValue(type.values, item, true, `${where}['${key}']`, out)
      return
    }

    case 'object': {
      if (!isRecord(value)) {
        out.add(`${where}: expected an object, got ${show(value)}`)
        return
      }

      const known = new Set(type.properties.map((property) => property.name))
      for (const property of type.properties) {
        if (property.name in value) checkValue(property.type, value[property.name], property.required, `${where}.${property.name}`, out)
        else if (property.required) out.add(`${where}: missing property '${property.name}'`)
      }

      for (const key of Object.keys(value)) if (!known.has(key)) out.add(`${where}: unexpected property '${key}'`)
    }
  }
}

function checkTensors(tensors: readonly TensorSpec[], predictions: unknown, out: Violations): void {
  const [first] = tensors
  if (tensors.length === 1 && first && !isRecord(predictions)) {
    checkTensor(first, predictions, 'the predictions', out)
    return
  }

  if (!isRecord(predictions)) {
    out.add(`expected an object of ${tensors.length} named tensors, got ${show(predictions)}`)
    return
  }

  for (const tensor of tensors) {
    if (tensor.name === undefined) continue
    if (tensor.name in predictions) checkTensor(tensor, predictions[tensor.name], `tensor '${tensor.name}'`, out)
    else out.add(`missing tensor '${tensor.name}'`)
  }

  const known = new Set(tensors.map((tensor) => tensor.name))
  for (const key of Object.keys(predictions)) if (!known.has(key)) out.add(`unexpected tensor '${key}'`)
}

const INT_RANGES: Record<string, readonly [number, number]> = {
  int8: [-(2 ** 7), 2 ** 7 - 1],
  int16: [-(2 ** 15), 2 ** 15 - 1],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [-(2 ** 63), 2 ** 63],
  uint8: [0, 2 ** 8 - 1],
  uint16: [0, 2 ** 16 - 1],
  uint32: [0, 2 ** 32 - 1],
  uint64: [0, 2 ** 64],
}

/** Whether a JSON value can be an element of a numpy array of this dtype. */
export function isOfDtype(dtype: string, value: unknown): boolean {
  const range = INT_RANGES[dtype]
  if (range) return Number.isInteger(value) && (value as number) >= range[0] && (value as number) <= range[1]
  if (/^float(16|32|64|128)?$/.test(dtype)) return typeof value === 'number'
  if (dtype === 'bool') return typeof value === 'boolean'
  if (dtype === 'str' || dtype.startsWith('<U') || dtype === 'bytes' || dtype.startsWith('datetime64')) return typeof value === 'string'
  return true
}

function checkTensor(tensor: TensorSpec, value: unknown, where: string, out: Violations): void {
  const walk = (node: unknown, depth: number, at: string): void => {
    if (out.full) return
    if (depth === tensor.shape.length) {
      if (Array.isArray(node) && tensor.dtype !== 'object')
        out.add(`${where}${at}: expected a ${tensor.dtype} element (shape ${show(tensor.shape)}), got an array`)
      else if (!isOfDtype(tensor.dtype, node)) out.add(`${where}${at}: expected ${tensor.dtype}, got ${show(node)}`)
      return
    }

    if (!Array.isArray(node)) {
      out.add(`${where}${at}: expected ${tensor.shape.length - depth} more dimension(s) (shape ${show(tensor.shape)}), got ${show(node)}`)
      return
    }

    const size = tensor.shape[depth]!
    if (size !== -1 && node.length !== size)
      out.add(`${where}${at}: dimension ${depth} has size ${node.length}, the shape ${show(tensor.shape)} says ${size}`)
    for (const [index, child] of node.entries()) walk(child, depth + 1, `${at}[${index}]`)
  }

  walk(value, 0, '')
}
