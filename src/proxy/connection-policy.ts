// The proxy's connection policy, for every request it sends a scorer (alone or merged by --batch): which
// headers belong to one connection and never cross the proxy, and when a failed request is sent again.
import type {IncomingHttpHeaders} from 'node:http'

/**
 * Headers that describe one connection, not the message: never forwarded in either direction (a request
 * header such as `te` in an answer, or `proxy-connection` either way, is dropped just the same). `expect`
 * is answered by the proxy itself (100 Continue once it wants the body), and undici refuses to send it.
 * `host` is forwarded: the scorer builds its redirects from it, as it does behind mlflow.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'expect',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Request headers in Node's flat rawHeaders form, without hop-by-hop ones (original case kept). */
export function forwardedRequestHeaders(rawHeaders: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1]!)
  }

  return out
}

/** Response headers from undici, without hop-by-hop ones. */
export function forwardedResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
  }

  return out
}

/**
 * A connection the scorer closed before answering: uvicorn closes a kept-alive connection after its own
 * 500 without saying so, and one left idle too long; a fresh connection gets an answer.
 */
const STALE_CONNECTION = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])

/**
 * Replay once: a request whose connection turned out stale is sent once more, on a fresh connection,
 * but only while no answer to it has begun. Once the scorer's response head came it has worked on the
 * request (a prediction ran): sending it again would run it twice, so the failure stands.
 */
export class ReplayOnce {
  private left = 1

  /** Whether to send the request again after `error`; counts the replay when it says yes. */
  allows(error: unknown, answerBegun: boolean): boolean {
    const code = (error as NodeJS.ErrnoException | undefined)?.code ?? ''
    if (this.left === 0 || answerBegun || !STALE_CONNECTION.has(code)) return false
    this.left--
    return true
  }
}
