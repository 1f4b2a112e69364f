// Finds uv, or installs a pinned uv from PyPI into mlserve's cache once, so model environments build fast.
import path from 'node:path'

import {MlserveError, messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import {which} from '../util/which.js'
import {ensureCachedEnv, envRoot} from './cache.js'

/** The uv mlserve installs for itself when none is found. */
export const UV_VERSION = '0.13.9'

type Env = Readonly<Record<string, string | undefined>>

/** uv from MLSERVE_UV (a path or a name; `none` disables it), else `uv` on PATH. */
export function findUv(env: Env): string | undefined {
  const wanted = env.MLSERVE_UV ?? 'uv'
  if (wanted === 'none') return undefined
  const found = which(wanted, env.PATH)
  if (!found && env.MLSERVE_UV) {
    throw new MlserveError('UV_NOT_FOUND', `MLSERVE_UV names '${wanted}', which is not an executable.`, {
      suggestions: ['Point MLSERVE_UV at the uv executable, or unset it (uv is then looked up on PATH), or set it to none.'],
    })
  }

  return found
}

/**
 * uv for building environments: the one found, else a pinned one installed with `python -m pip install
 * --target` into `<env root>/.tools/uv-<version>` (once; concurrent mlserves share it). Undefined when
 * MLSERVE_UV=none, or when the install fails (the caller decides whether that is an error).
 */
export async function ensureUv(python: string, env: Env, log: Logger, signal?: AbortSignal): Promise<string | undefined> {
  if (env.MLSERVE_UV === 'none') return undefined
  const found = findUv(env)
  if (found) return found
  const {execa} = await import('execa')
  try {
    const tool = await ensureCachedEnv({
      root: path.join(envRoot(env), '.tools'),
      key: `uv-${UV_VERSION}`,
      signal,
      metadata: {manager: 'tool', python: 'none', mlflow: null, model: ''},
      build: async (dir) => {
        const phase = log.phase(`installing uv ${UV_VERSION} from PyPI into mlserve's cache (once)`, {live: true})
        await execa(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', dir, `uv==${UV_VERSION}`], {
          env: {...env, PIP_NO_INPUT: '1'},
          extendEnv: false,
          stdin: 'ignore',
          cancelSignal: signal,
        })
        phase.done()
      },
    })
    return path.join(tool.dir, 'bin', 'uv')
  } catch (error) {
    if (signal?.aborted) throw error
    log.warn(`could not install uv (${messageOf(error).split('\n')[0]}); set MLSERVE_UV to a uv executable for fast builds`)
    return undefined
  }
}
