// The model download cache: one directory per immutable source (run artifact, model version, model id),
// downloaded once under a lock into a temporary directory and renamed into place (src/cache/build-once.ts).
import {homedir} from 'node:os'
import path from 'node:path'

import type {EnvVars} from '../config.js'
import {contentKey, ensureBuilt, missingFile, parseBaseRecord, type CacheKind, type CacheRecord} from '../cache/build-once.js'
import {lockTimeoutMs} from '../cache/lock.js'
import {MlserveError} from '../errors.js'
import {pathExists} from '../util/fs.js'

export function modelRoot(env: EnvVars): string {
  if (env.MLSERVE_MODEL_ROOT) return path.resolve(env.MLSERVE_MODEL_ROOT)
  const cache = env.XDG_CACHE_HOME ?? path.join(env.HOME ?? homedir(), '.cache')
  return path.join(cache, 'mlserve', 'models')
}

export interface ModelRecord extends CacheRecord {
  /** The source as the caller handed it (redacted by the caller). */
  readonly model: string
}

/** The model kind: a downloaded model directory, sound while it has its MLmodel. */
export const MODEL_KIND: CacheKind<ModelRecord> = {
  name: 'model',
  parse: (value) => {
    const record = parseBaseRecord(value)
    return record && typeof record.model === 'string' ? (record as unknown as ModelRecord) : undefined
  },
  verify: (dir) => missingFile(dir, ['MLmodel']),
}

export interface CacheRequest {
  readonly env: EnvVars
  /** The immutable source, e.g. `models:/churn/3`, and the stores it was read from: the cache key. */
  readonly source: string
  readonly stores: readonly string[]
  /** Downloads the model's files into `dir` (a fresh temporary directory). */
  readonly download: (dir: string) => Promise<void>
  /** Told whom this process waits for (first, then every 30 s): the holder's pid and a line saying since when. */
  readonly onWait?: (pid: number, detail: string) => void
  /** Told when a stale lock (its holder gone) is taken over. */
  readonly onTakeOver?: (message: string) => void
  readonly signal?: AbortSignal
}

export interface CachedModel {
  readonly dir: string
  /** False on a cache hit. */
  readonly downloaded: boolean
}

/** The model directory for `source`, downloading it at most once; a download without MLmodel is never kept. */
export async function cachedModel(request: CacheRequest): Promise<CachedModel> {
  const key = contentKey({source: request.source, stores: request.stores})
  const cached = await ensureBuilt({
    kind: MODEL_KIND,
    root: modelRoot(request.env),
    key,
    record: {model: request.source},
    onWait: (wait) => request.onWait?.(wait.owner.pid, wait.detail),
    onTakeOver: request.onTakeOver,
    signal: request.signal,
    lockTimeoutMs: lockTimeoutMs(request.env),
    async build(dir) {
      await request.download(dir)
      if (!(await pathExists(path.join(dir, 'MLmodel')))) {
        throw new MlserveError('MODEL_NOT_FOUND', `Could not find an "MLmodel" configuration file at "${request.source}"`, {
          suggestions: ['The URI must name the model directory itself (the one that holds MLmodel), e.g. runs:/<run_id>/model.'],
        })
      }
    },
  })
  return {dir: cached.dir, downloaded: cached.built}
}
