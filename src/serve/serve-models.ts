// `mlserve serve` with several models: one proxy, one socket directory, and per model its own
// single-model stack (see models.ts) behind the routes of model-routes.ts; undone in reverse on any exit.
import {rm} from 'node:fs/promises'

import type {ServeOptions} from '../config.js'
import {MlserveError, messageOf} from '../errors.js'
import {formatDuration} from '../log.js'
import type {ServerState} from '../proxy/app.js'
import type {PlainResponse} from '../proxy/responses.js'
import {EnvLoaders} from '../scorer/env-loader.js'
import type {RestartReason} from '../scorer/supervisor.js'
import type {Upstreams} from '../upstream.js'
import {CleanupStack} from '../util/cleanup.js'
import {guardPath} from '../util/exit-guard.js'
import {createSocketDir} from '../util/socket-dir.js'
import type {ModelPattern} from './model-patterns.js'
import type {ModelSpec} from './model-specs.js'
import type {ServedEntry} from './models.js'
import {describeEntry} from './model-routes.js'
import {ModelPool} from './model-pool.js'
import {combinedStatus, type ModelContext} from './models.js'
import type {ModelSet} from './pattern-follower.js'
import {registerPoolMetrics} from './pool-metrics.js'
import {servePatterns} from './serve-patterns.js'
import {openPublicPort, type PublicPort} from './public-port.js'
import type {ServeIo} from './serve.js'

export interface ModelSetOptions {
  readonly models: readonly ModelSpec[]
  /** Registry patterns: every match served under its registered name (followed with --reload-interval). */
  readonly patterns?: readonly ModelPattern[]
  readonly defaultModel?: string
  /** Fail at start when any model cannot be served. */
  readonly strict: boolean
  /** The rows of a merged call for a model whose `batch: true` turns batching on (serve's --batch-max-rows). */
  readonly batchMaxRows?: number
  /** --load (undefined: eager up to the limits, lazy beyond), --max-loaded, --max-memory (bytes), --max-loading. */
  readonly load?: 'eager' | 'lazy'
  readonly maxLoaded?: number
  readonly maxMemory?: number
  readonly maxLoading?: number
}

const SCORER_STOP_GRACE_MS = 10_000
/** How many models resolve, build and load at once (--max-loading's default). */
const LOADING_AT_ONCE = 2
/** How often each loaded model's memory is read (--max-memory, GET /models, /metrics). */
const MEASURE_EVERY_MS = 2000
const NO_SCORERS: Upstreams = {acquire: () => ({refused: 'unavailable', detail: 'the model is not loaded yet'}), release: () => {}}

/** serve's options for one model: its URI and its own settings over serve's flags. */
export function optionsOf(base: ServeOptions, spec: ModelSpec, batchMaxRows = 1024): ServeOptions {
  const {settings} = spec
  const batch = settings.batch
  return {
    ...base,
    modelUri: spec.uri,
    workers: settings.workers ?? base.workers,
    timeoutSeconds: settings.timeoutSeconds ?? base.timeoutSeconds,
    envManager: settings.envManager ?? base.envManager,
    installMlflow: settings.installMlflow ?? base.installMlflow,
    batchMaxRows: batch === undefined ? base.batchMaxRows : batch === false ? 0 : batch === true ? base.batchMaxRows || batchMaxRows : batch,
    // MLServer serves each model under its mlserve name: /v2/models/<name>/... goes to that model unchanged.
    env: base.enableMlserver ? {...base.env, MLSERVER_MODEL_NAME: spec.name} : base.env,
  }
}

export async function serveModels(options: ServeOptions, set: ModelSetOptions, io: ServeIo): Promise<void> {
  const {log} = io
  const cleanup = new CleanupStack()
  let state: ServerState = 'starting'
  const graceFor = (ms: number) => (io.force.aborted ? 0 : ms)
  const startedAt = performance.now()
  try {
    const [{createProxyHandler}, {Observer}, {prepareFrontDoor}, {createModelRouter}, {openApiRoute, OPENAPI_ROUTE}, {pageRoutes, PAGE_ROUTE}] =
      await Promise.all([
        import('../proxy/app.js'),
        import('../proxy/observe.js'),
        import('../proxy/front-door.js'),
        import('./model-routes.js'),
        import('../proxy/openapi-source.js'),
        import('../proxy/try-page.js'),
      ])
    // The front door guards every model's routes as it guards one model's: checked before the port is bound.
    const door = await prepareFrontDoor(options.frontDoor)
    const patterns = set.patterns ?? []
    // A registry that cannot be searched (sqlite, Databricks, plugins) is refused before the port is bound.
    if (patterns.length > 0) await (await import('../uri/registry-search.js')).checkRegistrySearchable({cwd: options.cwd, env: options.env})
    let pool: ModelPool | undefined
    const entries = () => pool?.entries ?? []
    const status = combinedStatus(entries)
    let server: PublicPort['server'] | undefined
    const observer = new Observer({
      state: () => state,
      scorers: () => status,
      inFlight: () => server?.requestsInFlight ?? 0,
      workers: set.models.reduce((sum, spec) => sum + (spec.settings.workers ?? options.workers), 0),
      accessLog: options.accessLog ? (io.accessLog ?? io.stdout) : undefined,
      logFormat: options.logFormat,
      batch: true,
      models: () => entries().map(({name, state}) => ({name, state})),
    })
    const poolEvents = registerPoolMetrics(observer.registry, () => pool)
    // Several models put two more levels in the sockets' paths: /<model>/<load>.
    const {dir: socketDir, fallbackReason} = await createSocketDir(undefined, 2)
    if (fallbackReason) log.warn(`the scorers' sockets are in ${socketDir}: ${fallbackReason} (set TMPDIR to a short writable directory)`)
    const releaseSocketDir = guardPath(socketDir)
    cleanup.defer('remove the scorer socket directory', async () => {
      await rm(socketDir, {recursive: true, force: true})
      releaseSocketDir()
    })

    const context: ModelContext = {
      log,
      generationIo: {
        log,
        stdout: io.stdout,
        stderr: io.stderr,
        events: {
          onRestart: (reason: RestartReason) => observer.recordRestart(reason),
          onRestarted: (seconds: number) => observer.recordRestarted(seconds),
        },
      },
      reloadIo: {log, stop: io.stop, force: io.force, onReloadRequest: io.onReloadRequest},
      reload: {generationIo: {log, stdout: io.stdout, stderr: io.stderr}, graceFor, stopGraceMs: SCORER_STOP_GRACE_MS, observer},
      stopGraceMs: SCORER_STOP_GRACE_MS,
      envLoaders: new EnvLoaders({socketDir, baseEnv: options.env, cwd: options.cwd, stdout: io.stdout, stderr: io.stderr, log}),
      handlerFor: (entry) => {
        const board = entry.switchboard
        const own = entry.options
        const backend = board?.current.plan.backend
        return createProxyHandler({
          upstreams: board ?? NO_SCORERS,
          state: () => (state === 'stopping' ? 'stopping' : entry.state === 'loaded' ? 'ready' : 'starting'),
          modelVersion: board ? () => board.served.label : undefined,
          timeoutMs: own.timeoutSeconds * 1000,
          maxBodyBytes: own.maxBodyBytes > 0 ? own.maxBodyBytes : undefined,
          // Each model's own OpenAPI document at /models/<name>/openapi.model.json, following its reloads.
          ownRoutes: board && {
            ...backend?.ownRoutes,
            [OPENAPI_ROUTE]: openApiRoute(() => ({model: board.current.model, served: board.served}), {
              maxBodyBytes: own.maxBodyBytes,
              log,
              prefix: `${door?.prefix ?? ''}/models/${entry.name}`,
            }),
          },
          rewrites: backend?.rewrites,
          spillDir: socketDir,
          maxStreams: own.maxStreams,
          batch: own.batchMaxRows
            ? {maxRows: own.batchMaxRows, waitMs: own.batchWaitMs, log, onBatch: observer.recordBatch, onWaiting: observer.recordWaiting}
            : undefined,
        })
      },
    }
    const limits = {
      load: set.load,
      maxLoaded: set.maxLoaded,
      maxMemory: set.maxMemory,
      maxLoading: set.maxLoading ?? LOADING_AT_ONCE,
      strict: set.strict,
    }
    const models = new ModelPool(context, limits, socketDir, io.stop, (spec) => optionsOf(options, spec, set.batchMaxRows), poolEvents)
    pool = models
    for (const spec of set.models) models.register(spec)
    // What the registry patterns add and remove while serving: the pool's models; a removed model's series go.
    const table: ModelSet = {
      get entries() {
        return models.entries
      },
      get: (name) => models.get(name),
      async add(spec) {
        log.info(`model ${spec.name} added (${spec.uri}): loading`)
        return models.add(spec)
      },
      async remove(name) {
        log.info(`model ${name} removed: finishing its requests, then stopping its scorers`)
        await models.remove(name, graceFor(options.gracePeriodMs))
        observer.dropModel(name)
        poolEvents.dropModel(name)
        log.info(`model ${name} stopped and released`)
      },
    }

    const handle = createModelRouter({
      entries: models.entries,
      defaultModel: set.defaultModel,
      state: () => state,
      operational: {...observer.routes(), ...(await pageRoutes()), '/readyz': () => readiness(state, models.entries)},
      lifecycle: models,
    })
    const publicPort = await openPublicPort(
      handle,
      door,
      options,
      {
        log,
        force: io.force,
        onReloadRequest: io.onReloadRequest,
        onResponse: observer.onResponse,
        onClosing: () => {
          state = 'stopping'
        },
      },
      cleanup,
    )
    server = publicPort.server
    const {url} = publicPort
    const closeProxy = publicPort.close
    io.onListening?.(url)
    // The registry patterns' matches join the list (a search that fails counts as a model that cannot be served).
    const patternFollower =
      patterns.length > 0
        ? await servePatterns(patterns, table, {
            listAtStart: (spec) => models.register(spec),
            options,
            log,
            stop: io.stop,
            onReloadRequest: io.onReloadRequest,
            onCheckFailed: () => observer.recordReloadCheckFailure(),
          })
        : undefined
    if (io.stop.aborted) return
    log.info(
      `listening on ${url} (${models.entries.length} models: ${models.entries.map((entry) => entry.name).join(', ')}; each answers 503 until it is prepared)`,
    )

    const killOnExit = () => models.killNow()
    process.once('exit', killOnExit)
    cleanup.defer('stop the models', async () => {
      process.off('exit', killOnExit)
      await models.stopAll(graceFor(SCORER_STOP_GRACE_MS), io.force)
    })
    const measuring = setInterval(() => void models.measure().catch(() => {}), MEASURE_EVERY_MS)
    measuring.unref()
    cleanup.defer('stop measuring memory', async () => clearInterval(measuring))
    // The patterns stop adding and removing models before the models stop.
    if (patternFollower) cleanup.defer('stop following the registry patterns', async () => patternFollower.stop())
    // The router answers from the start (a model serves as soon as it is loaded), but /ping, /health and
    // /readyz say ready only once every model listed at start is prepared or failed preparing: until then a
    // request for one still being resolved or built would get 503. Lazy models need not be loaded.
    // --strict: the first model that fails ends the start (the others' loads are stopped).
    await models.startAll(() => {
      if (state === 'starting') state = 'ready'
    })
    if (io.stop.aborted) return
    const all = models.entries
    const failed = all.filter((entry) => entry.state === 'failed')
    const unmatched = patternFollower?.unmatched ?? []
    if (failed.length === all.length || (set.strict && (failed.length > 0 || unmatched.length > 0))) {
      const none = failed.length === all.length
      const reasons = [
        ...failed.map((entry) => `${entry.name}: ${entry.error}`),
        ...unmatched.map((pattern) => `${pattern.pattern} matched no registered model`),
      ]
      throw new MlserveError(
        'SCORER_START_FAILED',
        `${none ? 'No model could be served' : `${failed.length + unmatched.length} of ${all.length + unmatched.length} models could not be served (--strict)`}: ${reasons.join('; ')}`,
        {suggestions: ["Each model's own error is logged above (lines starting with its name)."]},
      )
    }

    const unloaded = all.filter((entry) => entry.state === 'unloaded')
    log.info(
      `ready: serving ${all.length - failed.length} of ${all.length} models on ${url} (started in ${formatDuration(performance.now() - startedAt)}; try them at ${url}${PAGE_ROUTE})${unloaded.length > 0 ? `; loaded on first request: ${unloaded.map((entry) => entry.name).join(', ')}` : ''}${failed.length > 0 ? `; not served: ${failed.map((entry) => entry.name).join(', ')}` : ''}`,
    )
    patternFollower?.start()
    await new Promise<void>((resolve) => {
      if (io.stop.aborted) resolve()
      io.stop.addEventListener('abort', () => resolve(), {once: true})
    })
    log.info('shutting down: finishing requests in flight (send the signal again to stop at once)')
    await closeProxy()
  } finally {
    state = 'stopping'
    await cleanup.runAll((name, error) => log.warn(`could not ${name}: ${messageOf(error)}`))
  }

  if (io.force.aborted) throw new MlserveError('INTERRUPTED', 'Stopped at once by a second signal; requests in flight were cut off.')
}

/** /readyz with several models: 200 while one of them has a ready scorer or can be loaded; each model's state and scorers. */
function readiness(state: ServerState, entries: readonly ServedEntry[]): PlainResponse {
  const models = entries.map((entry) => describeEntry(entry))
  // An unloaded model counts: its first request loads it (--load lazy, or evicted).
  const servable = (entry: ServedEntry) =>
    entry.state === 'unloaded' || (entry.state === 'loaded' && (entry.switchboard?.counts().ready ?? 0) > 0)
  const ready = state === 'ready' && entries.some(servable)
  const body = {status: ready ? 'ready' : state === 'ready' ? 'unavailable' : state, models}
  return {status: ready ? 200 : 503, contentType: 'application/json', body: JSON.stringify(body)}
}
