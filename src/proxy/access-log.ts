// One access-log line per proxied request, readable text or JSON, and the request ID that ties it to the client.
import {randomUUID} from 'node:crypto'

export interface AccessEntry {
  readonly time: Date
  readonly requestId: string
  /** The client's address; empty when the socket was already gone. */
  readonly remote: string
  readonly method: string
  readonly path: string
  readonly status: number
  readonly durationMs: number
  readonly bytesIn?: number
  readonly bytesOut?: number
  /** The slot index of the scorer that answered; absent when the proxy answered itself. */
  readonly scorer?: number
  /** An ExchangeOutcome ('ok', 'timeout', 'client-timeout', 'upstream-error', 'client-closed', 'refused') or 'local'. */
  readonly outcome: string
  /** The short hash of the API key presented (never the key). */
  readonly key?: string
}

export type AccessLogFormat = 'text' | 'json'

/** One line, ending in '\n', that no path or header value can split or forge. */
export function formatAccessLog(entry: AccessEntry, format: AccessLogFormat): string {
  return format === 'json' ? jsonLine(entry) : textLine(entry)
}

/**
 * `2026-11-25T10:00:00.123Z 127.0.0.1 "POST /invocations" 200 3.4ms scorer=0 id=…`: the request
 * quoted as in common log format, then key=value fields, each present only when it says something.
 */
function textLine(entry: AccessEntry): string {
  const remote = entry.remote === '' ? '-' : token(entry.remote)
  const request = `"${escapeText(entry.method)} ${escapeText(entry.path)}"`
  let line = `${entry.time.toISOString()} ${remote} ${request} ${entry.status} ${entry.durationMs.toFixed(1)}ms`
  if (entry.outcome !== 'ok') line += ` outcome=${token(entry.outcome)}`
  if (entry.bytesIn !== undefined) line += ` in=${entry.bytesIn}`
  if (entry.bytesOut !== undefined) line += ` out=${entry.bytesOut}`
  if (entry.scorer !== undefined) line += ` scorer=${entry.scorer}`
  if (entry.key !== undefined) line += ` key=${token(entry.key)}`
  return `${line} id=${token(entry.requestId)}\n`
}

/** What JSON.stringify leaves raw but some readers break lines at: DEL, C1 controls (NEL), U+2028/U+2029. */
const JSON_UNSAFE = /[\u007F-\u009F\u2028\u2029]/g

/** Stable key order, so lines diff and grep well; optional fields are left out rather than null. */
function jsonLine(entry: AccessEntry): string {
  const json = JSON.stringify({
    time: entry.time.toISOString(),
    level: 'info',
    msg: 'request',
    requestId: entry.requestId,
    remote: entry.remote,
    method: entry.method,
    path: entry.path,
    status: entry.status,
    durationMs: Math.round(entry.durationMs * 1000) / 1000,
    bytesIn: entry.bytesIn,
    bytesOut: entry.bytesOut,
    scorer: entry.scorer,
    outcome: entry.outcome,
    key: entry.key,
  })
  return `${json.replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`
}

/** Control characters (C0, DEL, C1) and the Unicode line separators: anything a log reader may break a line at. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\\"\u0000-\u001F\u007F-\u009F\u2028\u2029]/g

/** Backslash escapes as in nginx's logs: `\"`, `\\`, and `\xHH` (or `\uHHHH`) for control characters. */
function escapeText(value: string): string {
  return value.replace(UNSAFE, (c) => {
    if (c === '\\' || c === '"') return `\\${c}`
    const code = c.charCodeAt(0)
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`
  })
}

/** A bare word when it is one; otherwise quoted and escaped, so a space cannot fake another field. */
// eslint-disable-next-line no-control-regex
const BARE = /^[^\s"\\\u0000-\u001F\u007F-\u009F]+$/
const token = (value: string): string => (BARE.test(value) ? value : `"${escapeText(value)}"`)

/** Printable ASCII except space and quotes, 1 to 200 characters: safe to echo in a header and a log line. */
const REQUEST_ID = /^[\u0021\u0023-\u0026\u0028-\u007E]{1,200}$/

/** Whether an incoming X-Request-ID can be kept; one that fails is replaced by newRequestId(). */
export const isValidRequestId = (value: string): boolean => REQUEST_ID.test(value)

export const newRequestId = (): string => randomUUID()

/**
 * Writes lines to `sink`, those of one turn of the event loop together: one write (one system call on a
 * pipe or file) for all the requests that ended in that turn rather than one each. Lines keep their order.
 */
export class TurnWriter {
  private pending = ''

  constructor(private readonly sink: {write(text: string): unknown}) {}

  write(line: string): void {
    if (this.pending === '') setImmediate(this.flush)
    this.pending += line
  }

  private readonly flush = () => {
    const text = this.pending
    this.pending = ''
    this.sink.write(text)
  }
}
