// A request body, read whole before any scorer is leased: in memory up to a bound, spilled to a file
// beyond it, so a slow or stalled upload never holds a scorer and a failed attempt can be replayed.
import {randomUUID} from 'node:crypto'
import {createReadStream, createWriteStream, type WriteStream} from 'node:fs'
import {rm} from 'node:fs/promises'
import type {IncomingMessage} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'
import type {Readable} from 'node:stream'

/** Bodies up to this size are held in memory (within the shared budget); bigger ones go to a file. */
export const MEMORY_BODY_LIMIT = 16 * 1024 * 1024

/** All request bodies held in memory at once (waiting for a scorer, or being sent) stay under this. */
export const MEMORY_BODY_BUDGET = 256 * 1024 * 1024

/** Bytes held in memory by request bodies, across requests. */
export class MemoryBudget {
  private used = 0

  constructor(readonly limit: number) {}

  get held(): number {
    return this.used
  }

  /** Takes `bytes` if they fit; false (and takes nothing) if not. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false
    this.used += bytes
    return true
  }

  give(bytes: number): void {
    this.used -= bytes
  }
}

/** Thrown when a request body is bigger than --max-body-size. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`The request body is larger than ${limit} bytes.`)
  }
}

/** A whole request body: none, in memory, or in a file. Each attempt to send it gets a fresh stream. */
export interface RequestBody {
  readonly size: number
  /** The bytes, when they are held in memory (not for a file). */
  readonly memory?: Buffer
  /** What undici sends: the Buffer itself, or a new stream over the file. */
  open(): Buffer | Readable | null
  /** Frees the memory or deletes the file; once. */
  discard(): void
}

const EMPTY: RequestBody = {size: 0, open: () => null, discard() {}}

export interface ReadBodyOptions {
  /** Larger bodies fail with BodyTooLarge (a declared length before a byte is read). */
  readonly maxBytes?: number
  /** One body above this many bytes goes to a file. */
  readonly memoryLimit?: number
  /** Shared by every request; a body that does not fit goes to a file. */
  readonly budget?: MemoryBudget
  /** Where spilled bodies go (default: the system's temporary directory). */
  readonly spillDir?: string
}

/**
 * Reads the whole body. Rejects with BodyTooLarge past maxBytes, or with the request's error when the
 * client goes away; either way nothing is kept.
 */
export function readBody(req: IncomingMessage, options: ReadBodyOptions = {}): Promise<RequestBody> {
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY
  const memoryLimit = options.memoryLimit ?? MEMORY_BODY_LIMIT
  const length = req.headers['content-length']
  if (length === undefined && req.headers['transfer-encoding'] === undefined) return Promise.resolve(EMPTY)
  if (length === '0') return Promise.resolve(EMPTY)
  if (length !== undefined && Number(length) > maxBytes) return Promise.reject(new BodyTooLarge(maxBytes))
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = []
    let size = 0
    /** Bytes of `chunks` taken from the budget. */
    let taken = 0
    let file: {path: string; stream: WriteStream} | undefined
    let failed = false

    const fail = (error: Error) => {
      if (failed) return
      failed = true
      detach()
      options.budget?.give(taken)
      chunks = []
      if (file) {
        const {path: filePath, stream} = file
        stream.destroy()
        void rm(filePath, {force: true})
      }

      reject(error)
    }

    const spill = () => {
      const filePath = path.join(options.spillDir ?? tmpdir(), `mlserve-body-${randomUUID()}`)
      const stream = createWriteStream(filePath, {flags: 'wx', mode: 0o600})
      stream.on('error', fail)
      stream.on('drain', () => req.resume())
      file = {path: filePath, stream}
      for (const chunk of chunks) stream.write(chunk)
      options.budget?.give(taken)
      taken = 0
      chunks = []
    }

    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        fail(new BodyTooLarge(maxBytes))
        return
      }

      if (!file) {
        if (size <= memoryLimit && (options.budget?.take(chunk.length) ?? true)) {
          if (options.budget) taken += chunk.length
          chunks.push(chunk)
          return
        }

        spill()
      }

      if (!file!.stream.write(chunk)) req.pause()
    }

    const onEnd = () => {
      detach()
      if (file) {
        const {path: filePath, stream} = file
        stream.end(() => {
          if (failed) return
          resolve(fileBody(filePath, size))
        })
        return
      }

      resolve(memoryBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), taken, options.budget))
    }

    const onAborted = () => fail(new Error('The client went away while sending the request body.'))

    const detach = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', fail)
      req.off('close', onClose)
    }

    const onClose = () => {
      if (!req.complete) onAborted()
    }

    req.on('data', onData)
    req.once('end', onEnd)
    req.once('error', fail)
    req.once('close', onClose)
  })
}

function memoryBody(buffer: Buffer, taken: number, budget: MemoryBudget | undefined): RequestBody {
  let held = taken
  return {
    size: buffer.length,
    memory: buffer,
    open: () => buffer,
    discard() {
      budget?.give(held)
      held = 0
    },
  }
}

function fileBody(filePath: string, size: number): RequestBody {
  let discarded = false
  return {
    size,
    open: () => createReadStream(filePath),
    discard() {
      if (discarded) return
      discarded = true
      void rm(filePath, {force: true})
    },
  }
}
