// The one orchestrator of `mlserve serve`: runs each stage, and undoes them in reverse order on any exit.
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import type {ServeOptions} from './config.js'
import {prepareEnv} from './env/env.js'
import {MlserveError, messageOf} from './errors.js'
import type {Logger} from './log.js'
import {pickBackend, readMlmodel, type Mlmodel} from './model/mlmodel.js'
import type {ServerState} from './proxy/app.js'
import {pyfuncScorerCommand} from './scorer/command.js'
import {ScorerProcess, type OutputSink} from './scorer/process.js'
import {describeExit, waitUntilReady} from './scorer/ready.js'
import {resolveModelUri, type ModelRef} from './uri/resolve.js'
import {CleanupStack} from './util/cleanup.js'

export interface ServeIo {
  readonly log: Logger
  readonly stdout: OutputSink
  readonly stderr: OutputSink
  /** Aborts on the first SIGINT/SIGTERM: drain and stop. */
  readonly stop: AbortSignal
  /** Aborts on the second: stop now. */
  readonly force: AbortSignal
  /** Called once the proxy is listening, with its URL. */
  readonly onListening?: (url: string) => void
}

/** How long the scorer may take to exit after SIGTERM before its process group gets SIGKILL. */
const SCORER_STOP_GRACE_MS = 10_000

export interface ResolvedModel {
  readonly ref: ModelRef
  readonly mlmodel: Mlmodel
}

/** Stages 1 and 2, shared with predict: the model URI becomes a model directory with a servable MLmodel. */
export async function loadModel(
  uri: string,
  cwd: string,
  log: Logger,
  context: {readonly env?: Readonly<Record<string, string | undefined>>; readonly signal?: AbortSignal; readonly python?: string} = {},
): Promise<ResolvedModel> {
  const resolving = log.phase('resolve model')
  const ref = await resolveModelUri(uri, {cwd, env: context.env ?? process.env, log, signal: context.signal, python: context.python})
  resolving.done(ref.localDir)

  const reading = log.phase('read MLmodel')
  const mlmodel = await readMlmodel(ref.localDir)
  const backend = pickBackend(mlmodel)
  reading.done(
    backend === 'pyfunc'
      ? `python_function flavor, loader ${mlmodel.pyfunc!.loaderModule}${mlmodel.mlflowVersion ? `, saved by mlflow ${mlmodel.mlflowVersion}` : ''}`
      : 'crate flavor',
  )
  if (backend === 'crate') {
    throw new MlserveError('NOT_AVAILABLE', 'Serving R crate models is not available yet in mlserve.', {
      suggestions: ['Serve it with `mlflow models serve` for now.'],
    })
  }

  return {ref, mlmodel}
}

export const urlOf = (host: string, port: number): string =>
  `http://${host.includes(':') ? `[${host}]` : host}:${port}`

export async function serve(options: ServeOptions, io: ServeIo): Promise<void> {
  const {log} = io
  const cleanup = new CleanupStack()
  let state: ServerState = 'starting'
  let upstream: import('undici').Pool | undefined
  const graceFor = (ms: number) => (io.force.aborted ? 0 : ms)

  try {
    if (options.enableMlserver) {
      throw new MlserveError('NOT_AVAILABLE', '--enable-mlserver is not available yet in mlserve.', {
        suggestions: ['Serve without --enable-mlserver: MLflow\'s own scoring server answers the same /invocations contract.'],
      })
    }

    const {ref, mlmodel} = await loadModel(options.modelUri, options.cwd, log, {env: options.env, signal: io.stop, python: options.python})
    const env = await prepareEnv({options, modelDir: ref.localDir, mlmodel, log, signal: io.stop})
    cleanup.defer('release the environment', env.release)

    // The proxy binds first: a port in use fails in milliseconds, before any Python starts.
    const [{createProxyApp}, {ProxyServer}, {Pool}] = await Promise.all([
      import('./proxy/app.js'),
      import('./proxy/server.js'),
      import('undici'),
    ])
    const app = createProxyApp({
      upstream: () => upstream,
      state: () => state,
      timeoutMs: options.timeoutSeconds * 1000,
    })
    const server = new ProxyServer(app)
    const port = await server.listen(options.host, options.port)
    const url = urlOf(options.host, port)
    // Closing the proxy drains it: on a signal this runs first (before the scorer stops), on other exits
    // as the last cleanup step; either way only once.
    let closing: Promise<void> | undefined
    const closeProxy = () => {
      closing ??= (async () => {
        state = 'stopping'
        const abandoned = await server.close(graceFor(options.gracePeriodMs), io.force)
        if (abandoned > 0) log.warn(`${abandoned} request(s) were still running when the grace period ended.`)
      })()
      return closing
    }

    cleanup.defer('close the proxy', closeProxy)
    log.info(`listening on ${url} (answering 503 until the model is loaded)`)
    io.onListening?.(url)

    const socketDir = await mkdtemp(path.join(tmpdir(), 'mlserve-'))
    cleanup.defer('remove the scorer socket directory', () => rm(socketDir, {recursive: true, force: true}))
    const socketPath = path.join(socketDir, 'scorer.sock')
    const command = pyfuncScorerCommand({
      env,
      modelDir: ref.localDir,
      socketPath,
      workers: options.workers,
      timeoutSeconds: options.timeoutSeconds,
    })

    const spawning = log.phase(`start scorer (${command.server}, ${options.workers} worker${options.workers === 1 ? '' : 's'})`)
    const scorer = await ScorerProcess.start({
      command,
      baseEnv: options.env,
      label: 'scorer',
      stdout: io.stdout,
      stderr: io.stderr,
      cwd: options.cwd,
    })
    const killOnExit = () => scorer.killNow()
    process.once('exit', killOnExit)
    cleanup.defer('stop the scorer', async () => {
      process.off('exit', killOnExit)
      const exit = await scorer.stop(graceFor(SCORER_STOP_GRACE_MS), io.force)
      log.info(`scorer stopped (${exit.signal ?? `exit code ${exit.exitCode}`})`)
    })
    spawning.done(`pid ${scorer.pid}`)

    const pool = new Pool('http://localhost', {
      socketPath,
      // uvicorn closes idle keep-alive connections after 5 s: let ours go first.
      keepAliveTimeout: 4000,
      keepAliveMaxTimeout: 4000,
    })
    cleanup.defer('close the scorer connections', () => pool.destroy())

    const loading = log.phase('load model in the scorer')
    const ready = await waitUntilReady(pool, scorer, io.stop)
    if (!ready) return
    loading.done()
    upstream = pool
    state = 'ready'
    log.info(`ready: serving ${options.modelUri} on ${url}`)

    const ended = await Promise.race([
      scorer.exited.then((exit) => ({exit})),
      new Promise<{stop: true}>((resolve) => {
        if (io.stop.aborted) resolve({stop: true})
        io.stop.addEventListener('abort', () => resolve({stop: true}), {once: true})
      }),
    ])
    if ('exit' in ended) {
      state = 'stopping'
      throw new MlserveError('SCORER_EXITED', `The scoring server ${describeExit(ended.exit)} while serving.`, {
        suggestions: ['Read the scorer output above for the reason; restart mlserve to serve again.'],
      })
    }

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
