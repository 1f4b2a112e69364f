// The gauges read at scrape time: requests in flight, the queue, the scorers by state, the served model(s).
import type {Registry} from './metrics.js'

/** What the supervisor reports, read at scrape time and by the probes. */
export interface ScorerStatus {
  counts(): Record<'starting' | 'ready' | 'retiring', number>
  readonly queueDepth: number
  readonly outstanding: number
  /** Why the server gave up restarting scorers, when it did. */
  readonly unhealthy: string | undefined
  /** How scorers are made: spawn, or preload (forked from a process that loaded the model). */
  readonly mode?: string
}

/** The model a generation serves, as /metrics and /readyz name it. */
export interface ServedModelInfo {
  readonly uri: string
  readonly version?: string
  readonly runId?: string
  readonly generation: number
}
/** Where the gauges read the server's state. */
export interface StateSources {
  readonly scorers: () => ScorerStatus | undefined
  readonly inFlight: () => number
  readonly workers: number
  /** What the serving generation serves (mlserve_model_info, /readyz). */
  readonly model?: () => ServedModelInfo | undefined
  /** Several models: the per-request series get a `model` label, and mlserve_model_state says each one's state. */
  readonly models?: () => ReadonlyArray<{readonly name: string; readonly state: string}>
}

/**
 * Registers the gauges whose values are read from the server's state each time /metrics is scraped.
 * `batchWaiting`: --batch's requests waiting behind a call of their kind in flight, which wait for a scorer too.
 */
export function registerStateGauges(registry: Registry, options: StateSources, batchWaiting: () => number = () => 0): void {
  registry.gauge('mlserve_http_requests_in_flight', 'Requests received and not yet answered.').collect(() => options.inFlight())
  registry
    .gauge('mlserve_queue_depth', 'Requests waiting for a scorer (--batch: those waiting behind a call of their kind in flight included).')
    .collect(() => (options.scorers()?.queueDepth ?? 0) + batchWaiting())
  registry
    .gauge('mlserve_scorer_requests_in_flight', 'Requests being handled by scorer processes.')
    .collect(() => options.scorers()?.outstanding ?? 0)
  registry.gauge('mlserve_scorers', 'Scorer processes by state.', ['state']).collect(() => {
    const counts = options.scorers()?.counts() ?? {starting: 0, ready: 0, retiring: 0}
    return Object.entries(counts).map(([state, n]) => [{state}, n] as const)
  })
  registry
    .gauge('mlserve_scorer_mode', '1 for how scorers are made: spawn, or preload (forked from one process that loaded the model).', ['mode'])
    .collect(() => [[{mode: options.scorers()?.mode ?? 'spawn'}, 1] as const])
  registry.gauge('mlserve_scorers_configured', 'Scorer processes asked for (-w).').set(undefined, options.workers)
  registry
    .gauge('mlserve_healthy', '1 unless a crash loop made mlserve stop restarting scorers.')
    .collect(() => (options.scorers()?.unhealthy ? 0 : 1))
  registry
    .gauge('mlserve_model_info', '1 for the model the serving generation serves: its URI, registry version, run and generation.', [
      'uri',
      'version',
      'run_id',
      'generation',
    ])
    .collect(() => {
      const model = options.model?.()
      if (!model) return []
      return [[{uri: model.uri, version: model.version ?? '', run_id: model.runId ?? '', generation: String(model.generation)}, 1] as const]
    })
  if (options.models) {
    registry
      .gauge('mlserve_model_state', '1 for each served model in its state: loading, loaded or failed.', ['model', 'state'])
      .collect(() => options.models!().map(({name, state}) => [{model: name, state}, 1] as const))
  }
}
