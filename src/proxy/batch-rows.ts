// --batch's row arithmetic, pure (no I/O): which /invocations bodies may merge and with which (same row
// format, columns, params and value kinds), the merged body, and the scorer's answer cut back per request.
import {NotJson, arraySpans, objectSpans, topLevelMembers, valueEnd, type Member, type Span} from './json-spans.js'

/** Bodies above this are never merged: parsing them would cost more than a merge saves. */
export const MAX_BATCHABLE_BYTES = 1024 * 1024

/**
 * Most bytes of rows in one merged call. Its body is a copy of its members' rows, and its answer is held
 * whole to be cut: capped at one batchable body, so a merged call needs no more memory than the largest
 * request served alone (without it, 1024 rows of 1 MiB made one 1 GiB call, and the scorer's frame of it).
 */
export const MAX_MERGED_BYTES = MAX_BATCHABLE_BYTES

/** The four row formats of MLflow's JSON input. */
const ROW_FORMATS = new Set(['dataframe_split', 'dataframe_records', 'instances', 'inputs'])

/** A batchable request, read: what must match for two to merge, its rows as raw text, and its parts. */
export interface RowsRequest {
  /** Format, columns, params (canonical), row shape and the JSON kinds in each column. */
  readonly key: string
  readonly format: string
  readonly rows: number
  /** The rows as sent, from the first row's start to the last one's end (separators included). */
  readonly rowsText: string
  /** dataframe_split's `columns`, as sent. */
  readonly columnsText: string | undefined
  /** `params`, as sent. */
  readonly paramsText: string | undefined
}

const utf8 = new TextDecoder('utf-8', {fatal: true})

/** The request's rows when it may merge with others; undefined for anything that must pass unchanged. */
export function readRows(body: Buffer): RowsRequest | undefined {
  if (body.length > MAX_BATCHABLE_BYTES) return undefined
  try {
    const text = utf8.decode(body)
    const members = topLevelMembers(text)
    if (new Set(members.map((m) => m.key)).size !== members.length) return undefined
    const formats = members.filter((m) => ROW_FORMATS.has(m.key))
    const params = members.find((m) => m.key === 'params')
    if (formats.length !== 1 || members.length !== (params ? 2 : 1)) return undefined
    const {key: format, value} = formats[0]!
    let columnsSpan: Span | undefined
    let rowsSpan: Span | undefined
    if (format === 'dataframe_split') {
      if (text[value.start] !== '{') return undefined
      const parts: Member[] = []
      objectSpans(text, value.start, parts)
      // `index` (and anything else) passes through: only columns and data are merged.
      if (parts.some((p) => p.key !== 'columns' && p.key !== 'data') || new Set(parts.map((p) => p.key)).size !== parts.length) {
        return undefined
      }

      columnsSpan = parts.find((p) => p.key === 'columns')?.value
      rowsSpan = parts.find((p) => p.key === 'data')?.value
    } else rowsSpan = value

    if (!rowsSpan || text[rowsSpan.start] !== '[') return undefined
    const rows: Span[] = []
    arraySpans(text, rowsSpan.start, rows)
    if (rows.length === 0) return undefined
    const shape = rowShape(text, rows)
    if (shape === undefined) return undefined
    const paramsText = params && text.slice(params.value.start, params.value.end)
    const columnsText = columnsSpan && text.slice(columnsSpan.start, columnsSpan.end)
    const columnsKey = columnsSpan ? canonical(text, columnsSpan) : '-'
    const paramsKey = params ? canonical(text, params.value) : '-'
    return {
      key: `${format}\u0000${columnsKey}\u0000${paramsKey}\u0000${shape}`,
      format,
      rows: rows.length,
      rowsText: text.slice(rows[0]!.start, rows.at(-1)!.end),
      columnsText,
      paramsText,
    }
  } catch {
    // Not UTF-8, not JSON as Python reads it: it goes alone, unchanged.
    return undefined
  }
}

/**
 * The JSON kind of a cell: pandas and numpy infer a column's dtype from the kinds in it, so only
 * requests with the same kinds per column merge (a merged frame then has the dtypes each alone had).
 * Nested values: undefined (not merged).
 */
function kindOf(text: string, span: Span): string | undefined {
  const c = text[span.start]!
  if (c === '"') return 's'
  if (c === 't' || c === 'f') return 'b'
  if (c === 'n') return 'n'
  if (c === '[' || c === '{') return undefined
  const raw = text.slice(span.start, span.end)
  if (/[.eEIN]/.test(raw)) return 'f'
  return integerKind(raw)
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const UINT64_MAX = 2n ** 64n - 1n

/**
 * pandas and numpy type an integer column by sign and range: int64, uint64 (non-negative, some beyond
 * int64), else object or float64. So: `i` non-negative int64, `j` negative int64, `u` uint64 only,
 * `I` beyond both. Where no `u` or `I` is in a column, `i` and `j` are one kind (int64 either way).
 */
function integerKind(raw: string): string {
  if (raw.replace('-', '').length > 20) return 'I'
  const value = BigInt(raw)
  if (value < INT64_MIN || value > UINT64_MAX) return 'I'
  if (value > INT64_MAX) return 'u'
  return value < 0n ? 'j' : 'i'
}

/** A column's kinds as a key: the sign of int64 values only counts next to a uint64 or larger one. */
function columnKinds(kinds: ReadonlySet<string>): string {
  const signed = kinds.has('u') || kinds.has('I')
  return [...new Set([...kinds].map((k) => (k === 'j' && !signed ? 'i' : k)))].sort().join('')
}

/** The rows' common shape and the kinds in each column; undefined when rows differ in shape or nest. */
function rowShape(text: string, rows: readonly Span[]): string | undefined {
  let shape: string | undefined
  let kinds: Array<Set<string>> = []
  for (const row of rows) {
    const c = text[row.start]
    let cells: Span[]
    let rowShape: string
    if (c === '[') {
      cells = []
      arraySpans(text, row.start, cells)
      rowShape = `L${cells.length}`
    } else if (c === '{') {
      const members: Member[] = []
      objectSpans(text, row.start, members)
      const keys = members.map((m) => m.key)
      if (new Set(keys).size !== keys.length) return undefined
      cells = members.map((m) => m.value)
      rowShape = `D${JSON.stringify(keys)}`
    } else {
      cells = [row]
      rowShape = 'S'
    }

    if (shape === undefined) {
      shape = rowShape
      kinds = cells.map(() => new Set<string>())
    } else if (shape !== rowShape) return undefined
    for (let i = 0; i < cells.length; i++) {
      const kind = kindOf(text, cells[i]!)
      if (kind === undefined) return undefined
      kinds[i]!.add(kind)
    }
  }

  return `${shape}\u0000${kinds.map((k) => columnKinds(k)).join(',')}`
}

/** A value in a canonical form: object keys sorted, strings re-encoded, numbers as written (1 is not 1.0). */
function canonical(text: string, span: Span): string {
  const c = text[span.start]
  if (c === '"') return JSON.stringify(JSON.parse(text.slice(span.start, span.end)))
  if (c === '[') {
    const items: Span[] = []
    arraySpans(text, span.start, items)
    return `[${items.map((item) => canonical(text, item)).join(',')}]`
  }

  if (c === '{') {
    const members: Member[] = []
    objectSpans(text, span.start, members)
    if (new Set(members.map((m) => m.key)).size !== members.length) throw new NotJson('duplicate keys')
    const sorted = members.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    return `{${sorted.map((m) => `${JSON.stringify(m.key)}:${canonical(text, m.value)}`).join(',')}}`
  }

  return text.slice(span.start, valueEnd(text, span.start))
}

/** One request body holding every member's rows, in order, with the first member's columns and params. */
export function mergeRows(members: readonly RowsRequest[]): Buffer {
  const first = members[0]!
  const rows = `[${members.map((m) => m.rowsText).join(', ')}]`
  const params = first.paramsText === undefined ? '' : `, "params": ${first.paramsText}`
  const value =
    first.format === 'dataframe_split' ? `{${first.columnsText === undefined ? '' : `"columns": ${first.columnsText}, `}"data": ${rows}}` : rows
  return Buffer.from(`{"${first.format}": ${value}${params}}`, 'utf8')
}

/**
 * Cuts the scorer's `{"predictions": [...]}` into one body per member (`counts` rows each), every one
 * exactly the text the scorer wrote, separators included. Undefined when the answer is anything else
 * (not a list, or not one element per row): the model's output is not row-aligned.
 */
export function splitPredictions(text: string, counts: readonly number[]): string[] | undefined {
  let members: Member[]
  try {
    members = topLevelMembers(text)
  } catch {
    return undefined
  }

  const list = members.length === 1 && members[0]!.key === 'predictions' ? members[0]!.value : undefined
  if (!list || text[list.start] !== '[') return undefined
  const items: Span[] = []
  arraySpans(text, list.start, items)
  if (items.length !== counts.reduce((sum, n) => sum + n, 0)) return undefined
  const prefix = text.slice(0, list.start + 1)
  const suffix = text.slice(list.end - 1)
  const parts: string[] = []
  let at = 0
  for (const n of counts) {
    parts.push(prefix + text.slice(items[at]!.start, items[at + n - 1]!.end) + suffix)
    at += n
  }

  return parts
}
