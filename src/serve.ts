// The one orchestrator of `mlserve serve`: runs each stage, and undoes them in reverse order on any exit.
import {realpath, rm} from 'node:fs/promises'
import path from 'node:path'

import type {ServeOptions} from './config.js'
import {diagnoseEnv, prepareEnv} from './env/env.js'
import {MlserveError, messageOf} from './errors.js'
import {formatDuration, type Logger} from './log.js'
import {loadModel, type ResolvedModel} from './load-model.js'
import type {FlavorKind, Mlmodel} from './model/mlmodel.js'
import type {ServerState} from './proxy/app.js'
import type {Backend} from './scorer/backend.js'
import {pyfuncBackend} from './scorer/command.js'
import type {OutputSink} from './scorer/process.js'
import {Supervisor, type WarmupRequest} from './scorer/supervisor.js'
import {redactUri} from './uri/tracking.js'
import {CleanupStack} from './util/cleanup.js'
import {guardPath} from './util/exit-guard.js'
import {isInsideDir} from './util/fs.js'
import {readBounded} from './util/read-bounded.js'
import {createSocketDir} from './util/socket-dir.js'

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
  /** Called once the first scorer is ready, with the URL and the model it serves. */
  readonly onReady?: (ready: {readonly url: string; readonly model: ResolvedModel}) => void
}

export type StartupPhase = 'resolve' | 'env' | 'spawn' | 'load' | 'warmup' | 'total'

/** How long a scorer may take to exit after SIGTERM before its process group gets SIGKILL. */
const SCORER_STOP_GRACE_MS = 10_000

export const urlOf = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`

export async function serve(options: ServeOptions, io: ServeIo): Promise<void> {
  const {log} = io
  const cleanup = new CleanupStack()
  let state: ServerState = 'starting'
  let supervisor: Supervisor | undefined
  const graceFor = (ms: number) => (io.force.aborted ? 0 : ms)
  const startedAt = performance.now()

  try {
    const model = await loadModel(options.modelUri, options.cwd, log, {
      env: options.env,
      signal: io.stop,
      python: options.python,
    })
    const {ref, mlmodel, flavor: kind} = model
    const resolvedAt = performance.now()
    const backend = await backendFor(kind, ref.localDir, mlmodel, options, io, cleanup)
    const envReadyAt = performance.now()
    const warmup =
      options.warmup && kind === 'pyfunc' ? await readWarmup(ref.localDir, mlmodel, {maxBytes: options.maxBodyBytes, log}) : undefined

    const [{createProxyHandler}, {ProxyServer}, {Observer}] = await Promise.all([
      import('./proxy/app.js'),
      import('./proxy/server.js'),
      import('./proxy/observe.js'),
    ])
    const {dir: socketDir, fallbackReason} = await createSocketDir()
    if (fallbackReason) log.warn(`the scorers' sockets are in ${socketDir}: ${fallbackReason} (set TMPDIR to a short writable directory)`)
    // Removed by the exit guard's watchdog if mlserve dies without running its cleanup (SIGKILL).
    const releaseSocketDir = guardPath(socketDir)
    cleanup.defer('remove the scorer socket directory', async () => {
      await rm(socketDir, {recursive: true, force: true})
      releaseSocketDir()
    })

    let server: InstanceType<typeof ProxyServer> | undefined
    const observer = new Observer({
      state: () => state,
      scorers: () => supervisor,
      inFlight: () => server?.requestsInFlight ?? 0,
      workers: options.workers,
      accessLog: options.accessLog ? (io.accessLog ?? io.stdout) : undefined,
      logFormat: options.logFormat,
      batch: Boolean(options.batchMaxRows),
    })
    const recordPhase = (phase: StartupPhase, ms: number) => {
      observer.recordPhase(phase, ms)
      io.onPhase?.(phase, ms)
    }

    recordPhase('resolve', resolvedAt - startedAt)
    recordPhase('env', envReadyAt - resolvedAt)
    supervisor = new Supervisor({
      backend,
      workers: options.workers,
      socketDir,
      baseEnv: options.env,
      cwd: options.cwd,
      stdout: io.stdout,
      stderr: io.stderr,
      log,
      maxConcurrency: options.maxConcurrency,
      maxQueue: options.maxQueue,
      timeoutMs: options.timeoutSeconds * 1000,
      stuckGraceMs: options.timeoutGraceMs,
      livenessIntervalMs: options.livenessIntervalMs,
      loadTimeoutMs: options.loadTimeoutMs,
      warmup,
      stopGraceMs: SCORER_STOP_GRACE_MS,
      events: {
        onRestart: (reason) => observer.recordRestart(reason),
        onRestarted: (seconds) => observer.recordRestarted(seconds),
        onPhase: recordPhase,
      },
    })
    const scorers = supervisor

    // The proxy binds first: a port in use fails in milliseconds, before any scorer starts.
    const handler = createProxyHandler({
      upstreams: scorers,
      state: () => state,
      timeoutMs: options.timeoutSeconds * 1000,
      maxBodyBytes: options.maxBodyBytes > 0 ? options.maxBodyBytes : undefined,
      operational: observer.routes(),
      ownRoutes: backend.ownRoutes,
      rewrites: backend.rewrites,
      // Request bodies too big to hold in memory wait here for a scorer (removed with the directory).
      spillDir: socketDir,
      batch: options.batchMaxRows ? {maxRows: options.batchMaxRows, waitMs: options.batchWaitMs, log, onBatch: observer.recordBatch} : undefined,
    })
    server = new ProxyServer(handler, {
      onResponse: observer.onResponse,
      headersTimeoutMs: options.headerTimeoutMs,
      requestTimeoutMs: options.headerTimeoutMs + options.bodyTimeoutMs,
    })
    const proxy = server
    const port = await proxy.listen(options.host, options.port)
    const url = urlOf(options.host, port)
    // Closing the proxy drains it: on a signal this runs first (before the scorers stop), on other exits
    // as the last cleanup step; either way only once.
    let closing: Promise<void> | undefined
    const closeProxy = () => {
      closing ??= (async () => {
        state = 'stopping'
        const abandoned = await proxy.close(graceFor(options.gracePeriodMs), io.force)
        if (abandoned > 0) log.warn(`${abandoned} request(s) were still running when the grace period ended.`)
      })()
      return closing
    }

    cleanup.defer('close the proxy', closeProxy)
    log.info(`listening on ${url} (answering 503 until the model is loaded${warmup ? ' and warmed up' : ''})`)
    io.onListening?.(url)

    const killOnExit = () => scorers.killNow()
    process.once('exit', killOnExit)
    cleanup.defer('stop the scorers', async () => {
      process.off('exit', killOnExit)
      const exits = await scorers.stop(graceFor(SCORER_STOP_GRACE_MS), io.force)
      if (exits.length > 0) log.info(`scorers stopped (${exits.map((exit) => exit.signal ?? `exit code ${exit.exitCode}`).join(', ')})`)
    })

    const ready = await scorers.start(io.stop)
    if (!ready) return
    state = 'ready'
    recordPhase('total', performance.now() - startedAt)
    log.info(`ready: serving ${redactUri(options.modelUri)} on ${url} (started in ${formatDuration(performance.now() - startedAt)})`)
    io.onReady?.({url, model})

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

/** The scorer kind the model needs, with its environment prepared (released by `cleanup`). */
async function backendFor(
  kind: FlavorKind,
  modelDir: string,
  mlmodel: Mlmodel,
  options: ServeOptions,
  io: ServeIo,
  cleanup: CleanupStack,
): Promise<Backend> {
  const {log} = io
  if (kind === 'crate') {
    if (options.enableMlserver) {
      throw new MlserveError('BACKEND_UNSUPPORTED', 'MLServer cannot serve R crate models (as in mlflow).', {
        suggestions: ['Serve it without --enable-mlserver: mlserve runs an R scorer for it.'],
      })
    }

    if (options.preload) log.warn('--preload does not apply to R crate models: each R scorer loads the model itself (spawn mode).')
    if (options.envManager !== 'local')
      log.info(`--env-manager ${options.envManager} does not apply to R crate models: they run with the system's R (as in mlflow)`)
    const {crateBackend} = await import('./scorer/crate.js')
    const phase = log.phase(
      `prepare R scorer (${options.rScorer === 'mlflow' ? "the R mlflow package's mlflow_rfunc_serve" : "mlserve's R scorer"})`,
    )
    const backend = await crateBackend({modelDir, mlmodel, env: options.env, rScorer: options.rScorer, mlflowVersion: mlmodel.mlflowVersion})
    phase.done()
    return backend
  }

  const mlserver = options.enableMlserver ? await import('./scorer/mlserver.js') : undefined
  const env = await prepareEnv({options, modelDir, mlmodel, log, signal: io.stop, serverPackages: mlserver?.MLSERVER_PACKAGES})
  cleanup.defer('release the environment', env.release)
  let backend = mlserver
    ? mlserver.mlserverBackend({env, modelDir, workers: options.workers, timeoutSeconds: options.timeoutSeconds, baseEnv: options.env})
    : pyfuncBackend({env, modelDir, timeoutSeconds: options.timeoutSeconds})
  if (options.preload) backend = await preloadOrSpawn(backend, env.executable, modelDir, options, log)
  return {...backend, diagnoseExit: async () => diagnoseEnv(env)}
}

/** --preload: forked scorers for MLflow's uvicorn app; the spawn mode (with a warning) for anything else. */
async function preloadOrSpawn(backend: Backend, python: string, modelDir: string, options: ServeOptions, log: Logger): Promise<Backend> {
  if (backend.kind !== 'pyfunc' || backend.server !== 'uvicorn') {
    const what = backend.kind === 'mlserver' ? 'MLServer' : `mlflow's ${backend.server} scorer (mlflow < 2.21)`
    log.warn(`--preload does not apply to ${what}: each scorer loads its own copy of the model (spawn mode).`)
    return backend
  }

  const {preloadBackend} = await import('./scorer/preload.js')
  return preloadBackend({spawn: backend, python, modelDir, timeoutSeconds: options.timeoutSeconds, loadTimeoutMs: options.loadTimeoutMs, log})
}

/** The largest warm-up example read when --max-body-size is 0 (no limit). */
const WARMUP_MAX_BYTES = 1024 * 1024 * 1024

/**
 * The model's serving input example (MLmodel's serving_input_path, else the usual file name), if any. It
 * must be a regular file inside the model directory once symlinks are resolved, and no larger than a
 * request may be (--max-body-size): anything else is reported and the warm-up skipped, never read.
 */
export async function readWarmup(
  modelDir: string,
  mlmodel: Mlmodel,
  options: {readonly maxBytes?: number; readonly log?: Logger} = {},
): Promise<WarmupRequest | undefined> {
  const name = mlmodel.servingInputPath ?? 'serving_input_example.json'
  const file = path.resolve(modelDir, name)
  const skip = (why: string) => {
    options.log?.warn(`not warming up with ${name}: ${why}; ready as soon as /ping answers`)
    return undefined
  }

  const real = await realpath(file).catch(() => undefined)
  const realDir = await realpath(modelDir).catch(() => path.resolve(modelDir))
  if (!isInsideDir(modelDir, file) || (real !== undefined && !isInsideDir(realDir, real))) {
    return skip(`it is outside the model directory (${real ?? file})`)
  }

  if (real === undefined) {
    options.log?.info(`no ${name} in the model: ready as soon as /ping answers`)
    return undefined
  }

  const maxBytes = options.maxBytes && options.maxBytes > 0 ? options.maxBytes : WARMUP_MAX_BYTES
  try {
    const body = await readBounded(real, {maxBytes, code: 'WARMUP_FAILED', what: name})
    return {body, contentType: 'application/json', source: name}
  } catch (error) {
    return skip(
      messageOf(error).replace(
        /: mlserve reads only .*$/,
        `: the warm-up reads only a regular file of at most --max-body-size (${maxBytes} bytes)`,
      ),
    )
  }
}
