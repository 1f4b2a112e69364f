// The responses the proxy produces itself, shaped exactly like the MLflow scoring server's.
import type {ServerResponse} from 'node:http'

import type {PlainResponse, Refusal} from '../upstream.js'

export type {PlainResponse} from '../upstream.js'

/** MLflow's 504 from its timeout middleware: a plain-text body under a JSON media type. */
export const TIMEOUT_RESPONSE: PlainResponse = {
  status: 504,
  contentType: 'application/json',
  body: 'Request processing time exceeded limit',
}

/** Python's json.dumps of a str: double quotes, \uXXXX escapes for non-ASCII (ensure_ascii). */
export function pythonJsonString(value: string): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** MlflowException.serialize_as_json(): {"error_code": ..., "message": ...} with Python's separators. */
export function errorEnvelope(status: number, errorCode: string, message: string, headers?: Readonly<Record<string, string>>): PlainResponse {
  return {
    status,
    contentType: 'application/json',
    body: `{"error_code": ${pythonJsonString(errorCode)}, "message": ${pythonJsonString(message)}}`,
    headers,
  }
}

export const notReadyResponse = (state: string): PlainResponse =>
  errorEnvelope(503, 'TEMPORARILY_UNAVAILABLE', `The model server is not ready to serve requests (${state}).`, {
    'retry-after': '1',
  })

export const upstreamFailedResponse = (reason: string): PlainResponse =>
  errorEnvelope(502, 'INTERNAL_ERROR', `The model scoring process failed while handling the request: ${reason}`)

/** Writes a PlainResponse on a raw Node response. */
export function sendPlain(res: ServerResponse, response: PlainResponse): void {
  const body = Buffer.from(response.body, 'utf8')
  res.writeHead(response.status, {
    ...response.headers,
    'content-type': response.contentType,
    'content-length': String(body.length),
  })
  res.end(body)
}

/** The same response as a web Response, for Hono handlers that do not need the fast path. */
export function toWebResponse(response: PlainResponse): Response {
  return new Response(response.body, {
    status: response.status,
    headers: {...response.headers, 'content-type': response.contentType},
  })
}

/** mlflow has no body limit, so no envelope of its own for this: BAD_REQUEST, as its other input errors. */
export const bodyTooLargeResponse = (limit: number): PlainResponse => ({
  ...errorEnvelope(413, 'BAD_REQUEST', `The request body is larger than the limit of ${limit} bytes (--max-body-size).`),
  refusal: 'body_too_large',
})

/** No scorer can take the request now (all restarting, or given up after a crash loop). */
export const noScorerResponse = (why: string): PlainResponse => ({
  ...errorEnvelope(503, 'TEMPORARILY_UNAVAILABLE', `No model scoring process is available: ${why}`, {'retry-after': '1'}),
  refusal: 'unavailable',
})

/** Every scorer is busy and the queue is full; `queued` says how many wait. */
export const queueFullResponse = (queued: string): PlainResponse => ({
  ...errorEnvelope(503, 'TEMPORARILY_UNAVAILABLE', `The model server is at capacity: every scorer is busy and ${queued} (--max-queue).`, {
    'retry-after': '1',
  }),
  refusal: 'queue_full',
})

/** The response for acquire()'s refusal. */
export const refusalResponse = (refusal: Refusal): PlainResponse =>
  refusal.refused === 'queue_full' ? queueFullResponse(refusal.detail) : noScorerResponse(refusal.detail)

/**
 * A request target that is not a path (`OPTIONS *`, an absolute URI): no scorer route can answer it.
 * mlflow has no envelope for it: BAD_REQUEST, as its other input errors.
 */
export const badTargetResponse = (target: string): PlainResponse =>
  errorEnvelope(400, 'BAD_REQUEST', `The request target must be a path starting with "/", not ${JSON.stringify(target.slice(0, 100))}.`)

/** The raw bytes answering a CONNECT request (a tunnel): the proxy is not a forward proxy. */
export function connectRefusal(): string {
  const {body} = errorEnvelope(405, 'BAD_REQUEST', 'CONNECT is not supported by this server.')
  return `HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, POST\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}
