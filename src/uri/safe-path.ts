// Path safety for downloads: a listed artifact path must stay inside the destination directory.
import path from 'node:path'

import {MlserveError} from '../errors.js'
import {isInsideDir} from '../util/fs.js'

/** Whether `relative` is a plain relative POSIX path: no `..`, not absolute, no backslash or NUL. */
export function isSafeRelativePath(relative: string): boolean {
  if (relative === '' || relative.startsWith('/') || /[\\\0]/.test(relative) || /^[A-Za-z]:/.test(relative)) return false
  return relative.split('/').every((segment) => segment !== '..' && segment !== '.' && segment !== '')
}

/** `dest/relative`, or UNSAFE_ARTIFACT_PATH if it would leave `dest`. */
export function safeJoin(dest: string, relative: string): string {
  const joined = path.resolve(dest, relative)
  if (!isSafeRelativePath(relative) || !isInsideDir(dest, joined)) {
    throw new MlserveError('UNSAFE_ARTIFACT_PATH', `Refusing to download the artifact '${relative}': it would be written outside ${dest}.`, {
      suggestions: ['The artifact store listed a path with .. or an absolute path; check the tracking server or artifact store.'],
    })
  }

  return joined
}
