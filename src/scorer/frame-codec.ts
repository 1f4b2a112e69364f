// The lean protocol's frames (templates/python/app/mlserve_lean.py speaks the other side): a request as one
// length-prefixed frame, and a reader that cuts the worker's answers out of a byte stream.
import type {IncomingHttpHeaders} from 'node:http'

/** The answer: status, headers and body. */
export const FRAME_ANSWER = 0
/** Nothing ran: the request goes over HTTP instead (a stream asked of a streaming model). */
export const FRAME_PASS = 1
/** Nothing ran, nor will: the request was cancelled before it started (the proxy forgets its id). */
export const FRAME_DROPPED = 2

/** u32 length (of what follows) | u32 id | u32 meta length. */
const REQUEST_HEAD = 12
/** u32 length | u32 id | u8 kind | u16 status | u32 meta length. */
const RESPONSE_HEAD = 15

/** A request frame's parts, ready for one writev: head, meta (JSON [method, path, query, headers]), body. */
export function encodeRequest(id: number, method: string, target: string, headers: readonly string[], body: Buffer): [Buffer, Buffer, Buffer] {
  const mark = target.indexOf('?')
  const path = mark === -1 ? target : target.slice(0, mark)
  const query = mark === -1 ? '' : target.slice(mark + 1)
  const meta = Buffer.from(JSON.stringify([method, path, query, headers]), 'latin1')
  const head = Buffer.allocUnsafe(REQUEST_HEAD)
  head.writeUInt32LE(8 + meta.length + body.length, 0)
  head.writeUInt32LE(id, 4)
  head.writeUInt32LE(meta.length, 8)
  return [head, meta, body]
}

/** A cancel frame: u32 length (8) | u32 id | u32 meta length 0 (a request's meta is never empty). */
export function encodeCancel(id: number): Buffer {
  const frame = Buffer.allocUnsafe(REQUEST_HEAD)
  frame.writeUInt32LE(8, 0)
  frame.writeUInt32LE(id, 4)
  frame.writeUInt32LE(0, 8)
  return frame
}

/** One answer frame. */
export interface ResponseFrame {
  readonly id: number
  readonly kind: number
  readonly status: number
  /** Header names and values, alternating, as the worker's app made them (before uvicorn's date/server). */
  readonly headers: readonly string[]
  readonly body: Buffer
}

/** A frame larger than this is a broken stream, not an answer (mlflow answers are far smaller). */
export const MAX_FRAME_BYTES = 2 ** 31

/** Cuts answer frames out of the bytes a connection receives, however they are split. */
export class FrameReader {
  private chunks: Buffer[] = []
  private buffered = 0

  /** Adds `chunk`; returns the frames now complete (usually none or one). Throws on a malformed frame. */
  push(chunk: Buffer): ResponseFrame[] {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const frames: ResponseFrame[] = []
    while (this.buffered >= 4) {
      const data = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered)
      const length = data.readUInt32LE(0)
      if (length < RESPONSE_HEAD - 4 || length > MAX_FRAME_BYTES) throw new Error(`a malformed frame (length ${length})`)
      if (data.length < 4 + length) {
        this.chunks = [data]
        break
      }

      frames.push(decodeResponse(data.subarray(0, 4 + length)))
      const rest = data.subarray(4 + length)
      this.chunks = rest.length > 0 ? [rest] : []
      this.buffered = rest.length
    }

    return frames
  }
}

function decodeResponse(frame: Buffer): ResponseFrame {
  const metaLength = frame.readUInt32LE(11)
  if (RESPONSE_HEAD + metaLength > frame.length) throw new Error(`a malformed frame (meta length ${metaLength})`)
  const meta = frame.toString('latin1', RESPONSE_HEAD, RESPONSE_HEAD + metaLength)
  const headers = metaLength > 0 ? (JSON.parse(meta) as unknown) : []
  if (!Array.isArray(headers) || !headers.every((part) => typeof part === 'string')) throw new Error('a malformed frame (headers)')
  return {
    id: frame.readUInt32LE(4),
    kind: frame.readUInt8(8),
    status: frame.readUInt16LE(9),
    headers: headers as string[],
    body: frame.subarray(RESPONSE_HEAD + metaLength),
  }
}

/**
 * The response headers as undici hands them to a dispatch handler, with what uvicorn puts in front of an
 * app's own headers: `date` (now, as the HTTP date) and `server: uvicorn`.
 */
export function responseHeaders(headers: readonly string[], date: string): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {date, server: 'uvicorn'}
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase()
    const value = headers[i + 1]!
    const before = out[name]
    if (before === undefined || name === 'date' || name === 'server') out[name] = value
    else out[name] = Array.isArray(before) ? [...before, value] : [before, value]
  }

  return out
}

/** Request headers (a flat list, an object, or none) as the flat list a frame carries. */
export function flatHeaders(headers: unknown): string[] {
  if (headers === null || headers === undefined) return []
  if (Array.isArray(headers)) return headers.map(String)
  const out: string[] = []
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const one of value) out.push(name, String(one))
    else out.push(name, String(value))
  }

  return out
}
