// Small file-system questions.
import {access} from 'node:fs/promises'
import path from 'node:path'

export const pathExists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  )

/** Whether `file` is strictly below `dir` (after resolving both; `dir` itself is not). */
export const isInsideDir = (dir: string, file: string): boolean => path.resolve(file).startsWith(path.resolve(dir) + path.sep)
