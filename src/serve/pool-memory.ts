// What the models of one mlserve take in memory: each loaded model's processes (PSS of its scorers'
// and its loader's trees) and the environments' shared loaders, read from /proc.
import type {EnvLoaders} from '../scorer/env-loader.js'
import {processPss, treePss} from './memory.js'
import type {ServedEntry} from './models.js'

export interface MemoryReading {
  /** Bytes: every loaded model's and every shared loader's PSS. */
  readonly total: number
  /** Bytes of the shared loaders (no model in them). */
  readonly shared: number
}

/** Measures each loaded model (kept in `entry.memory`) and the shared loaders. */
export async function measureMemory(entries: readonly ServedEntry[], loaders: EnvLoaders | undefined): Promise<MemoryReading> {
  const models = await Promise.all(
    entries.map(async (entry) => {
      const pids = entry.state === 'loaded' ? entry.pids() : []
      if (pids.length === 0) return 0
      const bytes = await treePss(pids)
      if (bytes > 0) entry.memory = bytes
      return bytes
    }),
  )
  const shared = await processPss((loaders?.running() ?? []).map((loader) => loader.pid))
  return {total: shared + models.reduce((sum, bytes) => sum + bytes, 0), shared}
}
