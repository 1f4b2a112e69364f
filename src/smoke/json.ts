// The JSON MLflow's scorer writes, read as MLflow writes it: Python's json allows NaN and Infinity.

const MARKERS: Record<string, number> = {
  '\u0000NaN': Number.NaN,
  '\u0000Infinity': Number.POSITIVE_INFINITY,
  '\u0000-Infinity': Number.NEGATIVE_INFINITY,
}

/** Parses JSON that may hold bare NaN, Infinity and -Infinity (outside strings); throws on anything else invalid. */
export function parseScorerJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    const quoted = quoteNonFinite(text)
    if (quoted === text) throw error
    return JSON.parse(quoted, (_key, value: unknown) => (typeof value === 'string' && value in MARKERS ? MARKERS[value] : value)) as unknown
  }
}

/** Replaces the bare tokens NaN, Infinity and -Infinity outside strings by marker strings. */
function quoteNonFinite(text: string): string {
  let out = ''
  let inString = false
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!
    if (inString) {
      out += char
      if (char === '\\') out += text[++index] ?? ''
      else if (char === '"') inString = false
      continue
    }

    if (char === '"') inString = true
    const token = ['-Infinity', 'Infinity', 'NaN'].find((name) => text.startsWith(name, index))
    if (token) {
      out += JSON.stringify(`\u0000${token}`)
      index += token.length - 1
    } else out += char
  }

  return out
}
