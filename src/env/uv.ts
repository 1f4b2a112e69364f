// Finds uv, or installs a pinned uv from PyPI into mlserve's cache once, so model environments build fast.
import path from 'node:path'

import type {EnvVars} from '../config.js'
import {ensureBuilt, missingFile, parseBaseRecord, type CacheKind, type CacheRecord} from '../cache/build-once.js'
import {lockTimeoutMs} from '../cache/lock.js'
import {MlserveError, messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import {describeFailure, run, tailLines} from '../util/exec.js'
import {which} from '../util/which.js'
import {envRoot} from './cache.js'

/** The uv mlserve installs for itself when none is found. */
export const UV_VERSION = '0.13.9'

export interface ToolRecord extends CacheRecord {
  readonly tool: string
  readonly version: string
}

/** The tool kind (`<env root>/.tools/<name>-<version>`): sound while its executable is there. */
export const TOOL_KIND: CacheKind<ToolRecord> = {
  name: 'tool',
  parse: (value) => {
    const record = parseBaseRecord(value)
    if (record && typeof record.tool === 'string') return record as unknown as ToolRecord
    // Before the kinds, mlserve wrote its uv's record as an environment's: {manager: 'tool', ...}.
    return record && record.manager === 'tool' ? ({...record, tool: 'uv', version: UV_VERSION} as unknown as ToolRecord) : undefined
  },
  verify: (dir, record) => missingFile(dir, [path.join('bin', record.tool)]),
}

/** uv from MLSERVE_UV (a path or a name; `none` disables it), else `uv` on PATH. */
export function findUv(env: EnvVars): string | undefined {
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
export async function ensureUv(
  python: string,
  env: EnvVars,
  log: Logger,
  signal?: AbortSignal,
  buildTimeoutMs?: number,
): Promise<string | undefined> {
  if (env.MLSERVE_UV === 'none') return undefined
  const found = findUv(env)
  if (found) return found
  try {
    const tool = await ensureBuilt({
      kind: TOOL_KIND,
      root: path.join(envRoot(env), '.tools'),
      key: `uv-${UV_VERSION}`,
      signal,
      lockTimeoutMs: lockTimeoutMs(env),
      buildTimeoutMs,
      record: {tool: 'uv', version: UV_VERSION},
      onTakeOver: (message) => log.warn(message),
      onWait: (wait) => log.info(`waiting for another mlserve (pid ${wait.owner.pid}) that is installing uv: ${wait.detail}`),
      onDamaged: (reason) => log.warn(`mlserve's uv is damaged: ${reason}; installing it again`),
      build: async (dir, context) => {
        const phase = log.phase(`installing uv ${UV_VERSION} from PyPI into mlserve's cache (once)`, {live: true})
        const result = await run(
          python,
          ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', dir, `uv==${UV_VERSION}`],
          {
            env: {...env, PIP_NO_INPUT: '1'},
            signal: context.signal,
            group: true,
          },
        )
        if (result.exitCode !== 0) {
          throw new MlserveError(
            'ENV_BUILD_FAILED',
            `pip install uv==${UV_VERSION} failed (${describeFailure(python, result)}): ${tailLines(result.stderr)}`,
          )
        }

        phase.done()
      },
    })
    return path.join(tool.dir, 'bin', 'uv')
  } catch (error) {
    if (signal?.aborted || (error instanceof MlserveError && error.code !== 'ENV_BUILD_FAILED')) throw error
    log.warn(`could not install uv (${messageOf(error).split('\n')[0]}); set MLSERVE_UV to a uv executable for fast builds`)
    return undefined
  }
}
