// Which requests ask for a stream (`"stream": true` at the top level or in `params` of a JSON body), and
// --max-streams: how many of them may run at once before the proxy answers 503 itself.
import {TIMEOUT_RESPONSE, errorEnvelope, type PlainResponse} from './responses.js'

const STREAM_KEY = Buffer.from('"stream"')

/** A JSON object body with `"stream": true` at its top level or in its `params` object. */
export function asksForStream(contentType: string | undefined, body: Buffer | undefined): boolean {
  if (!body || contentType === undefined || contentType.split(';', 1)[0]!.trim() !== 'application/json') return false
  // Most bodies never mention it: no parse for them.
  if (!body.includes(STREAM_KEY)) return false
  let document: unknown
  try {
    document = JSON.parse(body.toString('utf8'))
  } catch {
    return false
  }

  if (typeof document !== 'object' || document === null || Array.isArray(document)) return false
  const {stream, params} = document as {stream?: unknown; params?: unknown}
  return stream === true || (typeof params === 'object' && params !== null && (params as {stream?: unknown}).stream === true)
}

/** Counts the streams running; `enter()` is false when --max-streams are running already. */
export class StreamGate {
  private running = 0

  constructor(readonly max: number) {}

  get active(): number {
    return this.running
  }

  enter(): boolean {
    if (this.max > 0 && this.running >= this.max) return false
    this.running++
    return true
  }

  leave(): void {
    this.running = Math.max(0, this.running - 1)
  }
}

/** More streams are running than --max-streams allows. */
export const tooManyStreamsResponse = (max: number): PlainResponse => ({
  ...errorEnvelope(503, 'TEMPORARILY_UNAVAILABLE', `The model server is streaming to ${max} clients already (--max-streams).`, {
    'retry-after': '1',
  }),
  refusal: 'too_many_streams',
})

/** A server-sent events answer (a stream from predict_stream): its -t is per chunk. */
export const isEventStream = (type: string | string[] | undefined): boolean =>
  typeof type === 'string' && type.trimStart().toLowerCase().startsWith('text/event-stream')

/** How a stream cut by -t ends: MLflow's timeout message as an error event, then the end marker. */
export const STREAM_TIMEOUT_EVENTS = `data: {"error": {"error_code": "DEADLINE_EXCEEDED", "message": "${TIMEOUT_RESPONSE.body}"}}\n\ndata: [DONE]\n\n`
