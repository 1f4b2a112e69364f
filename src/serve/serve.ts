// The one orchestrator of `mlserve serve`: runs each stage, and undoes them in reverse order on any exit.
import {rm} from 'node:fs/promises'

import type {ServeOptions} from '../config.js'
import {MlserveError, messageOf} from '../errors.js'
import {formatDuration, type Logger} from '../log.js'
import {loadModel, type ResolvedModel} from '../load-model.js'
import type {ServerState} from '../proxy/app.js'
import type {RequestHandler} from '../proxy/server.js'
import {describeServed, followReference} from './reload.js'
import {ServingSet, servedModelOf, type ServedModel} from './generation.js'
import {planScorers, type PlanIo} from '../scorer/plan.js'
import {Switchboard} from './switchboard.js'
import {openPublicPort, type PublicPort} from './public-port.js'
import type {OutputSink} from '../scorer/process.js'
import type {RestartReason} from '../scorer/supervisor.js'
import type {Upstreams} from '../upstream.js'
import {redactUri} from '../uri/tracking.js'
import {CleanupStack} from '../util/cleanup.js'
import {guardPath} from '../util/exit-guard.js'
import {createSocketDir} from '../util/socket-dir.js'

export interface ServeIo {
  readonly log: Logger
  readonly stdout: OutputSink
  readonly stderr: OutputSink
  /** Where access log lines go (default: stdout); they are formatted already. */
  readonly accessLog?: OutputSink
  /** Aborts on the first SIGINT/SIGTERM: drain and stop. */
  readonly stop: AbortSignal
  /** Aborts on the second: stop now. */
  readonly force: AbortSignal
  /** Called once the proxy is listening, with its URL. */
  readonly onListening?: (url: string) => void
  /** Called with each start-up phase's duration as it ends (the phases /metrics reports). */
  readonly onPhase?: (phase: StartupPhase, ms: number) => void
  /** Calls `listener` on each request to check the model reference at once (SIGHUP); returns what unsubscribes it. */
  readonly onReloadRequest?: (listener: () => void) => () => void
  /** Called once the model is resolved, with its version and run id (facts as data: never parse the log). */
  readonly onModel?: (served: ServedModel) => void
  /** Called once the model's Python environment is ready, with its manager and cache key. */
  readonly onEnvironment?: PlanIo['onEnvironment']
  /** Called once the first scorer is ready, with the URL and the model it serves. */
  readonly onReady?: (ready: {readonly url: string; readonly model: ResolvedModel}) => void
}

export type StartupPhase = 'resolve' | 'env' | 'spawn' | 'load' | 'warmup' | 'total'

/** Where requests would go before the first scorers exist: nowhere (the starting handler never forwards). */
const NO_SCORERS: Upstreams = {acquire: () => ({refused: 'unavailable', detail: 'the model is not loaded yet'}), release: () => {}}

/** How long a scorer may take to exit after SIGTERM before its process group gets SIGKILL. */
const SCORER_STOP_GRACE_MS = 10_000

export {urlOf} from './public-port.js'

export async function serve(options: ServeOptions, io: ServeIo): Promise<void> {
  const {log} = io
  const cleanup = new CleanupStack()
  let state: ServerState = 'starting'
  let switchboard: Switchboard | undefined
  const graceFor = (ms: number) => (io.force.aborted ? 0 : ms)
  const startedAt = performance.now()

  try {
    const [{createProxyHandler}, {Observer}, {prepareFrontDoor}, {openApiRoute, OPENAPI_ROUTE}, {pageRoutes, PAGE_ROUTE}] = await Promise.all([
      import('../proxy/app.js'),
      import('../proxy/observe.js'),
      import('../proxy/front-door.js'),
      import('../proxy/openapi-source.js'),
      import('../proxy/try-page.js'),
    ])
    // API keys, TLS files, CORS and the prefix are checked before the port is bound or anything is built.
    const door = await prepareFrontDoor(options.frontDoor)

    let server: PublicPort['server'] | undefined
    const observer = new Observer({
      state: () => state,
      scorers: () => switchboard,
      model: () => switchboard?.served,
      inFlight: () => server?.requestsInFlight ?? 0,
      workers: options.workers,
      accessLog: options.accessLog ? (io.accessLog ?? io.stdout) : undefined,
      logFormat: options.logFormat,
      batch: Boolean(options.batchMaxRows),
    })
    // mlserve's GET routes answered in every state: /livez, /readyz, /metrics and the page to try the model.
    const operational = {...observer.routes(), ...(await pageRoutes())}
    const recordPhase = (phase: StartupPhase, ms: number) => {
      observer.recordPhase(phase, ms)
      io.onPhase?.(phase, ms)
    }

    // The proxy binds first: a port in use fails in milliseconds, before any model is resolved or
    // environment built. Until the first scorer's handler replaces it, every route but mlserve's own answers 503.
    let handle: RequestHandler = createProxyHandler({
      upstreams: NO_SCORERS,
      state: () => 'starting',
      timeoutMs: options.timeoutSeconds * 1000,
      operational,
    })
    const publicPort = await openPublicPort(
      (req, res, record) => handle(req, res, record),
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
    log.info(`listening on ${url} (answering 503 until the model is loaded${options.warmup ? ' and warmed up' : ''})`)
    io.onListening?.(url)

    const model = await loadModel(options.modelUri, options.cwd, log, {
      env: options.env,
      signal: io.stop,
      python: options.python,
    })
    const resolvedAt = performance.now()
    io.onModel?.(servedModelOf(model, 1))
    const plan = await planScorers(model, options, {log, signal: io.stop, onEnvironment: io.onEnvironment})
    // The serving generation's environment, released last (a replaced one is released when it stops).
    cleanup.defer('release the environment', async () => (switchboard ? switchboard.current.release() : plan.release()))
    const {backend} = plan
    const envReadyAt = performance.now()

    const {dir: socketDir, fallbackReason} = await createSocketDir()
    if (fallbackReason) log.warn(`the scorers' sockets are in ${socketDir}: ${fallbackReason} (set TMPDIR to a short writable directory)`)
    // Removed by the exit guard's watchdog if mlserve dies without running its cleanup (SIGKILL).
    const releaseSocketDir = guardPath(socketDir)
    cleanup.defer('remove the scorer socket directory', async () => {
      await rm(socketDir, {recursive: true, force: true})
      releaseSocketDir()
    })

    recordPhase('resolve', resolvedAt - startedAt)
    recordPhase('env', envReadyAt - resolvedAt)
    const restartEvents = {
      onRestart: (reason: RestartReason) => observer.recordRestart(reason),
      onRestarted: (seconds: number) => observer.recordRestarted(seconds),
    }
    const generationIo = {log, stdout: io.stdout, stderr: io.stderr}
    const first = await ServingSet.create(
      model,
      plan,
      1,
      socketDir,
      options,
      {...generationIo, events: {...restartEvents, onPhase: recordPhase}},
      SCORER_STOP_GRACE_MS,
    )
    switchboard = new Switchboard(first)
    const scorers = switchboard

    const openApi = openApiRoute(() => ({model: scorers.current.model, served: scorers.served}), {
      maxBodyBytes: options.maxBodyBytes,
      log,
      prefix: door?.prefix ?? '',
    })
    await openApi() // read once now: a signature that cannot be read is logged at start
    handle = createProxyHandler({
      upstreams: scorers,
      state: () => state,
      modelVersion: () => scorers.served.label,
      timeoutMs: options.timeoutSeconds * 1000,
      maxBodyBytes: options.maxBodyBytes > 0 ? options.maxBodyBytes : undefined,
      operational,
      ownRoutes: {
        ...backend.ownRoutes,
        // The model's own OpenAPI document (mlflow's /docs and /openapi.json stay the scorer's), following reloads.
        [OPENAPI_ROUTE]: openApi,
      },
      rewrites: backend.rewrites,
      // Request bodies too big to hold in memory wait here for a scorer (removed with the directory).
      spillDir: socketDir,
      maxStreams: options.maxStreams,
      batch: options.batchMaxRows
        ? {maxRows: options.batchMaxRows, waitMs: options.batchWaitMs, log, onBatch: observer.recordBatch, onWaiting: observer.recordWaiting}
        : undefined,
    })

    const killOnExit = () => scorers.killNow()
    process.once('exit', killOnExit)
    cleanup.defer('stop the scorers', async () => {
      process.off('exit', killOnExit)
      const exits = await scorers.stop(graceFor(SCORER_STOP_GRACE_MS), io.force)
      if (exits.length > 0) log.info(`scorers stopped (${exits.map((exit) => exit.signal ?? `exit code ${exit.exitCode}`).join(', ')})`)
    })

    const ready = await first.supervisor.start(io.stop)
    if (!ready) return
    state = 'ready'
    recordPhase('total', performance.now() - startedAt)
    log.info(
      `ready: serving ${redactUri(options.modelUri)}${describeServed(first.served)} on ${url} (started in ${formatDuration(performance.now() - startedAt)}); try it at ${url}${PAGE_ROUTE}`,
    )
    io.onReady?.({url, model})

    const follower = followReference(options, io, switchboard, {
      socketDir,
      generationIo: {...generationIo, events: restartEvents},
      graceFor,
      stopGraceMs: SCORER_STOP_GRACE_MS,
      observer,
    })
    cleanup.defer('stop following the model reference', async () => follower.stop())

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

  if (io.force.aborted) {
    throw new MlserveError('INTERRUPTED', 'Stopped at once by a second signal; requests in flight were cut off.')
  }
}
