// A validating scanner for JSON text as Python's json module reads it (NaN and Infinity included) that
// returns where values start and end instead of values, so batching can cut and join raw text.

/** Where a value is in the text: [start, end). */
export interface Span {
  readonly start: number
  readonly end: number
}

/** Thrown for text Python's json.loads would not read (the caller treats the request as not batchable). */
export class NotJson extends Error {}

const fail = (at: number): never => {
  throw new NotJson(`not JSON at ${at}`)
}

export function skipSpace(text: string, at: number): number {
  let i = at
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++
    else break
  }

  return i
}

const HEX = /^[\dA-Fa-f]{4}$/
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't'])

/** The end of the string starting at `at` (a `"`), validated as Python's strict decoder does. */
export function stringEnd(text: string, at: number): number {
  let i = at + 1
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 0x22) return i + 1
    if (c < 0x20) fail(i)
    if (c === 0x5c) {
      const next = text[i + 1]
      if (next === 'u') {
        if (!HEX.test(text.slice(i + 2, i + 6))) fail(i)
        i += 6
      } else if (next !== undefined && ESCAPES.has(next)) i += 2
      else fail(i)
    } else i++
  }

  return fail(at)
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[Ee][+-]?\d+)?/y
const LITERALS = ['true', 'false', 'null', 'NaN', 'Infinity', '-Infinity'] as const

/** The end of the scalar (number or literal) at `at`. */
function scalarEnd(text: string, at: number): number {
  for (const literal of LITERALS) if (text.startsWith(literal, at)) return at + literal.length
  NUMBER.lastIndex = at
  return NUMBER.test(text) ? NUMBER.lastIndex : fail(at)
}

/** The end of the value starting at `at` (no leading space), validating all of it. */
export function valueEnd(text: string, at: number): number {
  const c = text[at]
  if (c === '"') return stringEnd(text, at)
  if (c === '[') return arraySpans(text, at, undefined)
  if (c === '{') return objectSpans(text, at, undefined)
  return scalarEnd(text, at)
}

/** Scans the array at `at`; pushes each element's span to `out` (when given); returns the array's end. */
export function arraySpans(text: string, at: number, out: Span[] | undefined): number {
  let i = skipSpace(text, at + 1)
  if (text[i] === ']') return i + 1
  for (;;) {
    const end = valueEnd(text, i)
    out?.push({start: i, end})
    i = skipSpace(text, end)
    if (text[i] === ']') return i + 1
    if (text[i] !== ',') fail(i)
    i = skipSpace(text, i + 1)
  }
}

/** A member of an object: its key (decoded) and the span of its value. */
export interface Member {
  readonly key: string
  readonly value: Span
}

/** Scans the object at `at`; pushes each member to `out` (when given); returns the object's end. */
export function objectSpans(text: string, at: number, out: Member[] | undefined): number {
  let i = skipSpace(text, at + 1)
  if (text[i] === '}') return i + 1
  for (;;) {
    if (text[i] !== '"') fail(i)
    const keyEnd = stringEnd(text, i)
    const key = out ? (JSON.parse(text.slice(i, keyEnd)) as string) : ''
    i = skipSpace(text, keyEnd)
    if (text[i] !== ':') fail(i)
    i = skipSpace(text, i + 1)
    const end = valueEnd(text, i)
    out?.push({key, value: {start: i, end}})
    i = skipSpace(text, end)
    if (text[i] === '}') return i + 1
    if (text[i] !== ',') fail(i)
    i = skipSpace(text, i + 1)
  }
}

/** The members of a whole document that must be one object (nothing but space around it). */
export function topLevelMembers(text: string): Member[] {
  const members: Member[] = []
  const start = skipSpace(text, 0)
  if (text[start] !== '{') fail(start)
  const end = skipSpace(text, objectSpans(text, start, members))
  if (end !== text.length) fail(end)
  return members
}
