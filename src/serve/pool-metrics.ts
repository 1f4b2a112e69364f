// The lifecycle's series in /metrics (several models): loads and their durations, evictions, each
// model's memory and last use, the memory accounted against --max-memory.
import type {Registry} from '../proxy/metrics.js'
import type {ModelPool, PoolEvents} from './model-pool.js'

const LOAD_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/** Registers the series; the events the pool reports go to them; dropModel forgets a model no longer served. */
export function registerPoolMetrics(registry: Registry, pool: () => ModelPool | undefined): PoolEvents & {dropModel(model: string): void} {
  const loads = registry.counter('mlserve_model_loads_total', 'Model loads (a model started from unloaded), by model and result (ok, failed).', [
    'model',
    'result',
  ])
  const loadSeconds = registry.histogram(
    'mlserve_model_load_seconds',
    'How long each model load took, until its first scorer was ready.',
    [],
    LOAD_BUCKETS,
  )
  const evictions = registry.counter('mlserve_model_evictions_total', 'Models unloaded to make room (--max-loaded, --max-memory), by model.', [
    'model',
  ])
  const evictSeconds = registry.histogram(
    'mlserve_model_eviction_seconds',
    'How long each eviction took (its scorers stopping).',
    [],
    LOAD_BUCKETS,
  )
  registry
    .gauge('mlserve_model_memory_bytes', "PSS of each loaded model's processes (its loader and scorers), last measured.", ['model'])
    .collect(() =>
      (pool()?.entries ?? [])
        .filter((entry) => entry.state === 'loaded' && entry.memory)
        .map((entry) => [{model: entry.name}, entry.memory!] as const),
    )
  registry
    .gauge('mlserve_models_memory_bytes', 'Memory counted against --max-memory: every loaded model and the shared environment loaders (PSS).')
    .collect(() => pool()?.reading.total ?? 0)
  registry
    .gauge('mlserve_models_loaded', 'Models loaded now (their processes run).')
    .collect(() => (pool()?.entries ?? []).filter((entry) => entry.state === 'loaded').length)
  return {
    onLoad(model, ok, seconds) {
      loads.inc({model, result: ok ? 'ok' : 'failed'})
      if (ok) loadSeconds.observe(undefined, seconds)
    },
    onEvict(model, seconds) {
      evictions.inc({model})
      evictSeconds.observe(undefined, seconds)
    },
    dropModel(model) {
      loads.dropSeries(model)
      evictions.dropSeries(model)
    },
  }
}
