// Bounded reads of files a model directory brings: regular files only (never a FIFO or a device), up to a size.
import {constants} from 'node:fs'
import {open, stat} from 'node:fs/promises'

import {MlserveError, type ErrorCode} from '../errors.js'

/** The largest text file mlserve parses from a model (MLmodel, python_env.yaml, conda.yaml, requirements). */
export const MODEL_TEXT_MAX_BYTES = 16 * 1024 * 1024

export interface BoundedRead {
  readonly maxBytes: number
  /** The code of the MlserveError for a file that is not regular or too large. */
  readonly code: ErrorCode
  /** What the file is, for messages (default: its path). */
  readonly what?: string
  /** What may be read, after the reason in a refusal (default: mlserve's rule for the files of a model). */
  readonly rule?: string
  readonly suggestions?: readonly string[]
}

const MIB = 1024 * 1024
const sizeText = (bytes: number): string => (bytes >= MIB ? `${(bytes / MIB).toFixed(bytes % MIB === 0 ? 0 : 1)} MiB` : `${bytes} bytes`)

/** What a stat says a non-regular file is. */
export function kindOf(info: {
  isDirectory(): boolean
  isFIFO(): boolean
  isSocket(): boolean
  isCharacterDevice(): boolean
  isBlockDevice(): boolean
}): string {
  if (info.isDirectory()) return 'a directory'
  if (info.isFIFO()) return 'a FIFO (named pipe)'
  if (info.isSocket()) return 'a socket'
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device'
  return 'not a regular file'
}

/**
 * The bytes of `file` (symlinks followed). A FIFO, a device or a directory is refused before it is read
 * (opened non-blocking, so nothing ever waits on a writer), and so is a file larger than `maxBytes`.
 * Errors of the file system itself (ENOENT, EACCES) are thrown as they are.
 */
export async function readBounded(file: string, options: BoundedRead): Promise<Buffer> {
  const what = options.what ?? file
  const refuse = (why: string) =>
    new MlserveError(
      options.code,
      `${what} ${why}: ${options.rule ?? `mlserve reads only regular files of at most ${sizeText(options.maxBytes)} from a model.`}`,
      {
        suggestions: options.suggestions ?? ['Replace it with a regular file (save the model again with mlflow).'],
      },
    )
  const info = await stat(file)
  if (!info.isFile()) throw refuse(`is ${kindOf(info)}`)
  if (info.size > options.maxBytes) throw refuse(`is too large (${sizeText(info.size)})`)
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  try {
    // The path may have been swapped between stat and open: check what was opened.
    const opened = await handle.stat()
    if (!opened.isFile()) throw refuse(`is ${kindOf(opened)}`)
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, options.maxBytes + 1 - total))
      // eslint-disable-next-line no-await-in-loop
      const {bytesRead} = await handle.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      chunks.push(chunk.subarray(0, bytesRead))
      total += bytesRead
      if (total > options.maxBytes) throw refuse('is too large (it grew while being read)')
    }

    return Buffer.concat(chunks, total)
  } finally {
    await handle.close()
  }
}

/** readBounded, decoded as UTF-8. */
export const readBoundedText = async (file: string, options: BoundedRead): Promise<string> => (await readBounded(file, options)).toString('utf8')
