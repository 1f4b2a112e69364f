// File-system failures of the caches (a full disk, a read-only or unwritable directory) as one clear error.
import {MlserveError, isMlserveError} from '../errors.js'

const WHY: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'an I/O error',
  EMFILE: 'too many open files',
}

/** Whether `error` is a raw file-system error of the kinds above (from a syscall), not one of mlserve's. */
export function isFsError(error: unknown): error is NodeJS.ErrnoException {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return !isMlserveError(error) && typeof code === 'string' && code in WHY && typeof (error as NodeJS.ErrnoException).syscall === 'string'
}

/**
 * CACHE_IO_FAILED naming the directory (and the file, when the error names one) for a raw file-system
 * error; anything else is returned as it is.
 */
export function cacheIoError(error: unknown, dir: string): unknown {
  if (!isFsError(error)) return error
  const code = error.code!
  const file = error.path && error.path !== dir ? ` (${error.syscall} ${error.path})` : ` (${error.syscall})`
  return new MlserveError('CACHE_IO_FAILED', `Could not write to ${dir}: ${WHY[code]} [${code}]${file}.`, {
    cause: error,
    suggestions: [
      code === 'ENOSPC' || code === 'EDQUOT'
        ? `Free space on the file system that holds ${dir} (\`mlserve env prune\` removes unused environments), or move the cache: MLSERVE_ENV_ROOT, MLSERVE_MODEL_ROOT.`
        : `Make ${dir} writable, or move the cache: MLSERVE_ENV_ROOT, MLSERVE_MODEL_ROOT.`,
    ],
  })
}
