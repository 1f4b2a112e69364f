// Small file-system questions.
import {access, realpath} from 'node:fs/promises'
import path from 'node:path'

export const pathExists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  )

/** Whether `file` is strictly below `dir` (after resolving both; `dir` itself is not). */
export const isInsideDir = (dir: string, file: string): boolean => path.resolve(file).startsWith(path.resolve(dir) + path.sep)

/** A directory that files must stay inside, as given and with its links resolved. */
export interface DirRoot {
  readonly dir: string
  readonly real: string
}

export const dirRoot = async (dir: string): Promise<DirRoot> => ({dir, real: await realpath(dir).catch(() => path.resolve(dir))})

/**
 * `file`'s real path (undefined when it cannot be resolved: `error` says why, ENOENT or ELOOP) and whether
 * it stays inside `root`, as written and once its links are resolved.
 */
export async function resolveInside(
  root: DirRoot,
  file: string,
): Promise<{readonly inside: boolean; readonly real?: string; readonly error?: string}> {
  let error: string | undefined
  const real = await realpath(file).catch((failure: NodeJS.ErrnoException) => {
    error = failure.code ?? 'EIO'
    return undefined
  })
  return {inside: isInsideDir(root.dir, file) && (real === undefined || isInsideDir(root.real, real)), real, error}
}
