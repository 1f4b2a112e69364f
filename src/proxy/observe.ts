// What mlserve tells about itself: the Prometheus metrics, the access log, and /livez, /readyz, /metrics.
import {TurnWriter, formatAccessLog, type AccessLogFormat} from './access-log.js'
import {pathOf, type ServerState} from './app.js'
import {PROMETHEUS_CONTENT_TYPE, Registry, type Counter, type Histogram} from './metrics.js'
import type {PlainResponse} from './responses.js'
import {registerStateGauges, type StateSources} from './state-gauges.js'
import type {RequestRecord} from './server.js'
import type {ExchangeOutcome} from '../upstream.js'

/** Routes get their own label value; anything else is "other", so clients cannot blow up the series. */
const ROUTES = new Set(['/invocations', '/ping', '/health', '/version', '/metrics', '/livez', '/readyz', '/ui'])
const routeOf = (url: string): string => {
  const path = pathOf(url)
  return ROUTES.has(path) ? path : path.startsWith('/v2/') ? '/v2' : 'other'
}

export type {ScorerStatus, ServedModelInfo} from './state-gauges.js'

export interface ObserverOptions extends StateSources {
  readonly state: () => ServerState
  /** Where access log lines go (undefined: no access log). */
  readonly accessLog?: {write(line: string): unknown}
  readonly logFormat: AccessLogFormat
  /** --batch: report mlserve_batch_size. */
  readonly batch?: boolean
}

/** Rows or requests per merged scorer call: powers of two up to the largest --batch-max-rows default. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]

export class Observer {
  /** Public so that the multi-model lifecycle adds its series (serve/pool-metrics.ts). */
  readonly registry = new Registry()
  private readonly requests: Counter
  private readonly latency: Histogram

  private readonly rejected: Counter
  private readonly timeouts: Counter
  private readonly restarts = this.registry.counter('mlserve_scorer_restarts_total', 'Scorer processes restarted or replaced, by reason.', [
    'reason',
  ])
  private readonly restartSeconds = this.registry.histogram(
    'mlserve_scorer_restart_seconds',
    "Time from a scorer's failure (or the start of its replacement) to the slot's new scorer being ready.",
    [],
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  )

  private readonly phases = this.registry.gauge('mlserve_startup_phase_seconds', 'How long each start-up phase took.', ['phase'])
  private readonly reloads = this.registry.counter(
    'mlserve_reloads_total',
    'Checks of the model reference (--reload-interval, SIGHUP), by outcome: switched to a new version, failed to prepare it, or unchanged.',
    ['outcome'],
  )

  private readonly reloadCheckFailures = this.registry.counter(
    'mlserve_reload_check_failures_total',
    'Checks of the model reference that could not ask the tracking server (down, 5xx); serving went on.',
  )
  private readonly streams: Counter
  private readonly streamFirstByte: Histogram
  private readonly streamDuration: Histogram
  private readonly streamBytes: Counter
  private readonly batchSize: Histogram | undefined
  /** --batch: requests waiting behind a call of their kind in flight (in mlserve_queue_depth). */
  private waiting = 0
  private readonly accessLog: TurnWriter | undefined

  constructor(private readonly options: ObserverOptions) {
    const {registry} = this
    this.accessLog = options.accessLog && new TurnWriter(options.accessLog)
    const model = options.models ? ['model'] : []
    const by = options.models ? 'by model, route' : 'by route'
    this.requests = registry.counter('mlserve_http_requests_total', `HTTP requests answered, ${by}, method and status.`, [
      ...model,
      'route',
      'method',
      'status',
    ])
    this.latency = registry.histogram('mlserve_http_request_duration_seconds', `Time from the request arriving to its response ending, ${by}.`, [
      ...model,
      'route',
    ])
    this.rejected = registry.counter(
      'mlserve_requests_rejected_total',
      `Requests the proxy answered itself without a scorer: body too large, queue full, no scorer available${options.models ? ' (by model)' : ''}.`,
      [...model, 'reason'],
    )
    this.timeouts = registry.counter(
      'mlserve_request_timeouts_total',
      `Requests that got a 504 (the proxy's deadline or the scorer's)${options.models ? ', by model' : ''}.`,
      model,
    )
    this.streams = registry.counter(
      'mlserve_streams_total',
      'Server-sent events answers (predict_stream), by how they ended: ok, client-closed, timeout, upstream-error.',
      [...model, 'outcome'],
    )
    this.streamFirstByte = registry.histogram(
      'mlserve_stream_first_byte_seconds',
      "Time from a streamed request arriving to its answer's first event going out.",
      model,
    )
    this.streamDuration = registry.histogram(
      'mlserve_stream_duration_seconds',
      'Time from a streamed request arriving to its answer ending.',
      model,
      [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    )
    this.streamBytes = registry.counter('mlserve_stream_bytes_total', 'Bytes of server-sent events sent to clients.', model)
    this.batchSize = options.batch
      ? registry.histogram(
          'mlserve_batch_size',
          'Merged /invocations scorer calls (--batch): rows (of="rows") and requests (of="requests") in each.',
          ['of'],
          BATCH_BUCKETS,
        )
      : undefined
    registerStateGauges(registry, options, () => this.waiting)

    for (const outcome of ['switched', 'failed', 'unchanged']) this.reloads.inc({outcome}, 0)
    this.reloadCheckFailures.inc(undefined, 0)
    for (const reason of ['exited', 'unresponsive', 'stuck', 'warmup-failed', 'load-timeout']) this.restarts.inc({reason}, 0)
    for (const reason of ['body_too_large', 'queue_full', 'unavailable', 'not_ready']) this.rejected.inc({model: '', reason}, 0)
    this.timeouts.inc({model: ''}, 0)
  }

  /** A model is no longer served: its per-request series go (the series stay bounded by the models served). */
  dropModel(name: string): void {
    if (name === '' || !this.options.models) return
    for (const metric of [
      this.requests,
      this.latency,
      this.rejected,
      this.timeouts,
      this.streams,
      this.streamFirstByte,
      this.streamDuration,
      this.streamBytes,
    ])
      metric.dropSeries(name)
  }

  recordPhase(phase: string, ms: number): void {
    this.phases.set({phase}, ms / 1000)
  }

  /** One merged scorer call of `requests` requests holding `rows` rows. */
  readonly recordBatch = (rows: number, requests: number): void => {
    this.batchSize?.observe({of: 'rows'}, rows)
    this.batchSize?.observe({of: 'requests'}, requests)
  }

  /** --batch: requests waiting behind a call of their kind in flight went up or down by `delta`. */
  readonly recordWaiting = (delta: number): void => {
    this.waiting += delta
  }

  recordReload(outcome: 'switched' | 'failed' | 'unchanged'): void {
    this.reloads.inc({outcome})
  }

  recordReloadCheckFailure(): void {
    this.reloadCheckFailures.inc()
  }

  recordRestart(reason: string): void {
    this.restarts.inc({reason})
  }

  recordRestarted(seconds: number): void {
    this.restartSeconds.observe(undefined, seconds)
  }

  /** ProxyServer's onResponse: one access log line and the request metrics. */
  readonly onResponse = (record: RequestRecord): void => {
    const {req, res} = record
    const seconds = (performance.now() - record.start) / 1000
    const route = routeOf(req.url ?? '/')
    const model = record.model ?? ''
    const status = res.headersSent ? res.statusCode : 0
    const outcome: ExchangeOutcome | 'local' = record.outcome ?? (res.writableFinished ? 'local' : 'client-closed')
    this.requests.inc({model, route, method: req.method ?? '', status: String(status)})
    this.latency.observe({model, route}, seconds)
    if (outcome === 'timeout') this.timeouts.inc({model})
    if (record.refusal) this.rejected.inc({model, reason: record.refusal})
    const {stream} = record
    if (stream) {
      this.streams.inc({model, outcome: outcome === 'local' ? 'ok' : outcome})
      if (stream.firstByteAt !== undefined) this.streamFirstByte.observe({model}, (stream.firstByteAt - record.start) / 1000)
      this.streamDuration.observe({model}, seconds)
      this.streamBytes.inc({model}, stream.bytes)
    }
    this.accessLog?.write(
      formatAccessLog(
        {
          time: new Date(),
          requestId: record.id,
          remote: req.socket.remoteAddress ?? '',
          method: req.method ?? '',
          path: record.target ?? req.url ?? '',
          status,
          durationMs: seconds * 1000,
          bytesOut: stream ? stream.bytes : Number(res.getHeader('content-length') ?? Number.NaN) || undefined,
          scorer: record.scorer,
          outcome,
          key: record.key,
        },
        this.options.logFormat,
      ),
    )
  }

  /** /livez, /readyz and /metrics. */
  routes(): Record<string, () => PlainResponse> {
    return {
      '/livez': () => {
        const unhealthy = this.options.scorers()?.unhealthy
        return json(unhealthy ? 503 : 200, unhealthy ? {status: 'unhealthy', reason: unhealthy} : {status: 'alive'})
      },
      '/readyz': () => {
        const state = this.options.state()
        const scorers = this.options.scorers()
        const counts = scorers?.counts() ?? {starting: 0, ready: 0, retiring: 0}
        const ready = state === 'ready' && counts.ready > 0
        const status = ready ? 'ready' : state === 'ready' ? (scorers?.unhealthy ? 'unhealthy' : 'unavailable') : state
        const model = this.options.model?.()
        const served = model && {uri: model.uri, version: model.version ?? null, run_id: model.runId ?? null, generation: model.generation}
        return json(ready ? 200 : 503, {status, scorers: {...counts, configured: this.options.workers}, ...(served ? {model: served} : {})})
      },
      '/metrics': () => ({status: 200, contentType: PROMETHEUS_CONTENT_TYPE, body: this.registry.render()}),
    }
  }
}

const json = (status: number, value: unknown): PlainResponse => ({status, contentType: 'application/json', body: JSON.stringify(value)})
