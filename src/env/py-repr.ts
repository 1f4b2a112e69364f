// Python's view of a YAML value from a model file, for messages worded as mlflow's: its type name and its
// repr, bounded whatever the value expands to.

/** Whether a YAML value is a mapping (not a list, a date or null). */
export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)

/** Python's name for the type of a YAML value, as in "<class 'float'>" (js-yaml reads 3.0 as 3: an int here). */
export function pyType(value: unknown): string {
  if (typeof value === 'string') return 'str'
  if (typeof value === 'boolean') return 'bool'
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float'
  if (value === null || value === undefined) return 'NoneType'
  if (Array.isArray(value)) return 'list'
  return value instanceof Date ? 'datetime.date' : 'dict'
}

/** The longest repr a message prints of a value from a model file; longer ones end in "...". */
const REPR_MAX = 2000

/** Python's repr of a YAML value, for messages that print one: at most REPR_MAX characters, whatever the value expands to. */
export function pyRepr(value: unknown, max = REPR_MAX): string {
  const out: string[] = []
  let length = 0
  const emit = (text: string) => {
    out.push(text)
    length += text.length
  }

  const visit = (item: unknown): void => {
    if (length > max) return
    if (typeof item === 'string') {
      const cut = item.slice(0, max + 1)
      const quote = cut.includes("'") && !cut.includes('"') ? '"' : "'"
      const escaped = cut
        .replaceAll('\\', '\\\\')
        .replaceAll(quote, `\\${quote}`)
        .replaceAll('\n', '\\n')
        .replaceAll('\r', '\\r')
        .replaceAll('\t', '\\t')
      emit(quote + escaped + quote)
    } else if (typeof item === 'boolean') emit(item ? 'True' : 'False')
    else if (item === null || item === undefined) emit('None')
    else if (Array.isArray(item)) {
      emit('[')
      item.forEach((child, index) => {
        if (length > max) return
        if (index > 0) emit(', ')
        visit(child)
      })
      emit(']')
    } else if (isRecord(item)) {
      emit('{')
      Object.entries(item).forEach(([key, child], index) => {
        if (length > max) return
        if (index > 0) emit(', ')
        visit(key)
        emit(': ')
        visit(child)
      })
      emit('}')
    } else emit(String(item))
  }

  visit(value)
  const text = out.join('')
  return text.length > max ? `${text.slice(0, max)}...` : text
}
