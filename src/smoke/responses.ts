// How a smoke check judges a response body: an excerpt for messages, the predictions and their comparison
// with a tolerance, the events of a stream; a check that fails or is skipped throws CheckFailure / CheckSkipped.
import {show} from './conform.js'
import {parseScorerJson} from './json.js'

/** A check failed: the message says what was expected, the excerpt what came back. */
export class CheckFailure extends Error {
  constructor(
    message: string,
    readonly excerpt?: string,
  ) {
    super(message)
  }
}

/** A check does not apply (the model lacks what it needs): the message says why. */
export class CheckSkipped extends Error {}

/**
 * The start of a response body, for messages. MLflow's error envelope becomes its code and message and
 * the last line of its stack trace (the model's own exception), instead of 500 characters of traceback.
 */
export function excerptOf(text: string, max = 500): string {
  let envelope: unknown
  try {
    envelope = JSON.parse(text)
  } catch {}

  if (typeof envelope === 'object' && envelope !== null && 'error_code' in envelope && 'message' in envelope) {
    const {error_code: code, message, stack_trace: trace} = envelope as Record<string, unknown>
    const exception = typeof trace === 'string' ? trace.trimEnd().split('\n').at(-1)?.trim() : undefined
    text = `${String(code)}: ${String(message)}${exception ? `\n  ${exception}` : ''}`
  }

  return text.length > max ? `${text.slice(0, max)}... (${text.length} characters)` : text
}

/** The predictions in a response body: MLflow's {"predictions": ...}, else the whole JSON body. */
export function predictionsOf(text: string): unknown {
  const body = parseScorerJson(text)
  return typeof body === 'object' && body !== null && !Array.isArray(body) && 'predictions' in body ? body.predictions : body
}

/** Deep equality where numbers may differ by `tolerance` (NaN equals NaN). */
export function sameValue(expected: unknown, got: unknown, tolerance = 0): boolean {
  if (typeof expected === 'number' && typeof got === 'number') {
    if (Number.isNaN(expected) || Number.isNaN(got)) return Number.isNaN(expected) && Number.isNaN(got)
    return expected === got || Math.abs(expected - got) <= tolerance
  }

  if (Array.isArray(expected) || Array.isArray(got)) {
    return (
      Array.isArray(expected) &&
      Array.isArray(got) &&
      expected.length === got.length &&
      expected.every((item, index) => sameValue(item, got[index], tolerance))
    )
  }

  if (typeof expected === 'object' && expected !== null && typeof got === 'object' && got !== null) {
    const keys = Object.keys(expected)
    return (
      keys.length === Object.keys(got).length &&
      keys.every((key) => key in got && sameValue((expected as Record<string, unknown>)[key], (got as Record<string, unknown>)[key], tolerance))
    )
  }

  return expected === got
}

/**
 * The number of chunk events in a server-sent events body that ends with `data: [DONE]`; a CheckFailure
 * for anything else (a JSON answer, an event that is not JSON, an error event, no [DONE]).
 */
export function checkEvents(text: string): number {
  const blocks = text.split('\n\n').filter((block) => block.length > 0)
  if (blocks.at(-1) !== 'data: [DONE]') {
    throw new CheckFailure('expected server-sent events ending with "data: [DONE]" (is the fast path off, or mlflow < 2.21?)', excerptOf(text))
  }

  for (const block of blocks.slice(0, -1)) {
    if (!block.startsWith('data: ')) throw new CheckFailure(`an event that is not "data: <json>": ${show(block, 200)}`)
    let event: unknown
    try {
      event = JSON.parse(block.slice(6))
    } catch {
      throw new CheckFailure(`an event whose data is not JSON: ${show(block, 200)}`)
    }

    if (typeof event === 'object' && event !== null && 'error' in event && Object.keys(event).length === 1) {
      throw new CheckFailure('the stream ended with an error event', excerptOf(JSON.stringify((event as {error: unknown}).error)))
    }
  }

  if (blocks.length < 2) throw new CheckFailure('the stream had no event before [DONE]')
  return blocks.length - 1
}
