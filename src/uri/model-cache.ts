// The model download cache: one directory per immutable source (run artifact, model version, model id),
// downloaded once under a lock into a temporary directory and renamed into place (src/env/cache.ts).
import {homedir} from 'node:os'
import path from 'node:path'

import {contentKey, ensureCachedEnv} from '../env/cache.js'
import {MlserveError} from '../errors.js'
import {pathExists} from '../util/fs.js'
import type {Env} from './tracking.js'

export function modelRoot(env: Env): string {
  if (env.MLSERVE_MODEL_ROOT) return path.resolve(env.MLSERVE_MODEL_ROOT)
  const cache = env.XDG_CACHE_HOME ?? path.join(env.HOME ?? homedir(), '.cache')
  return path.join(cache, 'mlserve', 'models')
}

export interface CacheRequest {
  readonly env: Env
  /** The immutable source, e.g. `models:/churn/3`, and the stores it was read from: the cache key. */
  readonly source: string
  readonly stores: readonly string[]
  /** Downloads the model's files into `dir` (a fresh temporary directory). */
  readonly download: (dir: string) => Promise<void>
  readonly onWait?: (pid: number) => void
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
  const cached = await ensureCachedEnv({
    root: modelRoot(request.env),
    key,
    metadata: {manager: 'model', python: '', mlflow: null, model: request.source},
    onWait: request.onWait,
    signal: request.signal,
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
