// The private directory of the scorers' Unix sockets: under TMPDIR, else a short one mlserve owns under /tmp.
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {MlserveError, messageOf} from '../errors.js'

/** A Unix socket path holds 108 bytes on Linux (104 on macOS and the BSDs), its NUL included. */
export const SOCKET_PATH_MAX = process.platform === 'linux' ? 107 : 103
/**
 * What the directory and the supervisor's socket names add to the parent:
 * `/mlserve-XXXXXX/<model generation>/s<slot>-<start>.sock` (a reload's scorers are in a subdirectory).
 */
const ROOM = '/mlserve-XXXXXX/9999/s999-999999.sock'.length
/** What each further level adds (several models: `/<model>/<load>` before the generation's). */
const LEVEL = '/9999'.length
const roomFor = (levels: number) => ROOM + levels * LEVEL

export interface SocketDir {
  readonly dir: string
  /** Why the first candidate (TMPDIR) was not used, when it was not. */
  readonly fallbackReason?: string
}

/** Whether sockets in a directory made under `parent` (`levels` more directories deep) fit the socket path limit. */
export const fitsSocketPath = (parent: string, levels = 0): boolean =>
  Buffer.byteLength(path.resolve(parent)) + roomFor(levels) <= SOCKET_PATH_MAX

/**
 * A fresh 0700 directory (mkdtemp) for the scorers' sockets under the first candidate that can hold one:
 * short enough for socket paths, existing, writable, not full. Candidates: TMPDIR (os.tmpdir()), then /tmp.
 * `levels`: directories the caller adds between it and a generation's sockets (several models: 2).
 */
export async function createSocketDir(candidates: readonly string[] = [tmpdir(), '/tmp'], levels = 0): Promise<SocketDir> {
  const reasons: string[] = []
  for (const parent of [...new Set(candidates.map((candidate) => path.resolve(candidate)))]) {
    if (!fitsSocketPath(parent, levels)) {
      reasons.push(
        `${parent} is too long for Unix socket paths (${Buffer.byteLength(parent)} bytes; sockets under it would pass the ${SOCKET_PATH_MAX}-byte limit)`,
      )
      continue
    }

    try {
      // eslint-disable-next-line no-await-in-loop
      const dir = await mkdtemp(path.join(parent, 'mlserve-'))
      return {dir, fallbackReason: reasons.length > 0 ? reasons.join('; ') : undefined}
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      const why =
        code === 'ENOSPC'
          ? 'it is full'
          : code === 'ENOENT'
            ? 'it does not exist'
            : code === 'EACCES' || code === 'EROFS'
              ? 'it is not writable'
              : messageOf(error)
      reasons.push(`cannot create a directory in ${parent}: ${why}`)
    }
  }

  throw new MlserveError('SOCKET_DIR_FAILED', `mlserve cannot create a directory for the scorers' Unix sockets: ${reasons.join('; ')}.`, {
    suggestions: [
      `Point TMPDIR at a short (at most ${SOCKET_PATH_MAX - roomFor(levels)} bytes), existing, writable directory with free space, e.g. TMPDIR=/tmp.`,
    ],
  })
}
