// Serve's flags and the mapping from them to ServeOptions, declared once: serve uses them as they are;
// smoke, generate-k8s, build-docker and prepare-env derive theirs from these.
import {Flags} from '@oclif/core'

import {LOG_FORMATS, R_SCORERS, type LogFormat, type RScorer, type ServeOptions} from '../config.js'
import {modelFlags, modelOptionsFrom, type ModelFlagValues} from './flags.js'
import {multiModelFlags} from './multi-model-flags.js'

/**
 * Every flag's help shows its default: oclif prints `[default: X]` except for booleans and falsy values,
 * so those say theirs in the summary (on/off, 0).
 */
function showDefaults<T extends Record<string, {type: string; default?: unknown; summary?: string}>>(flags: T): T {
  const shown: Record<string, unknown> = {}
  for (const [name, flag] of Object.entries(flags)) {
    const hidden = flag.type === 'boolean' ? (flag.default ? 'on' : 'off') : flag.default === 0 ? '0' : undefined
    shown[name] = hidden === undefined ? flag : {...flag, summary: `${flag.summary ?? ''} Default: ${hidden}.`}
  }

  return shown as T
}

/** How long a scorer may take to load the model. */
export const loadTimeoutFlag = Flags.integer({
  env: 'MLSERVE_LOAD_TIMEOUT',
  default: 600,
  min: 0,
  summary:
    'Seconds a new scorer may take to load the model (answer /ping); past it the start fails (exit 44), or a later scorer is restarted (0: no bound).',
})

export const serveFlags = showDefaults({
  ...modelFlags,
  port: Flags.integer({
    char: 'p',
    env: 'MLFLOW_PORT',
    default: 5000,
    min: 0,
    max: 65_535,
    summary: 'The port to listen on (0: any free port, logged at start-up).',
  }),
  host: Flags.string({
    char: 'h',
    env: 'MLFLOW_HOST',
    default: '127.0.0.1',
    summary: 'The address to listen on (0.0.0.0 for every interface). Help is --help, as in mlflow.',
  }),
  timeout: Flags.integer({
    char: 't',
    env: 'MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT',
    default: 60,
    min: 1,
    summary: 'Seconds a request may take before it gets MLflow\'s 504 "Request processing time exceeded limit".',
  }),
  workers: Flags.integer({
    char: 'w',
    env: 'MLFLOW_MODELS_WORKERS',
    default: 1,
    min: 1,
    summary: 'Number of scorer worker processes (each loads its own copy of the model).',
  }),
  preload: Flags.boolean({
    env: 'MLSERVE_PRELOAD',
    default: false,
    summary: 'Load the model once and fork the -w scorers from that process (they share its memory).',
    description:
      "pyfunc models served with uvicorn (mlflow >= 2.21). A replaced scorer is forked again instead of loading the model again. When the model's load starts threads, mlserve falls back to spawning (with a warning).",
  }),
  'fast-path': Flags.boolean({
    env: 'MLSERVE_FAST_PATH',
    default: true,
    allowNo: true,
    summary: "Answer a successful POST /invocations without FastAPI's routing and middleware.",
    description:
      "pyfunc models served with uvicorn (mlflow >= 2.21), spawn and --preload. The scorer runs mlserve's mlserve_fastpath.py, which loads the model as MLflow's app module does and keeps MLflow's app for every route; for POST /invocations it calls MLflow's own invocations() directly, so the answer's bytes are MLflow's. Anything else (errors other than MLflow's, a request without Content-Type, another mlflow app layout, FastAPI's OpenTelemetry on) is answered by MLflow's app, and a model or mlflow version it cannot check logs why and runs MLflow's app unchanged. --no-fast-path serves MLflow's app module as it is.",
  }),
  'enable-mlserver': Flags.boolean({
    default: false,
    summary: "Serve with Seldon MLServer instead of MLflow's scoring server.",
    description:
      "mlserve installs mlserver and mlserver-mlflow into the model's environment (with --env-manager local they must already be there) and proxies /invocations and MLServer's V2 routes (/v2/...). --timeout is enforced by the proxy. Not for R crate models.",
  }),
  'grace-period': Flags.integer({
    env: 'MLSERVE_GRACE_PERIOD',
    default: 30,
    min: 0,
    summary: 'Seconds requests in flight may take to finish after SIGINT/SIGTERM.',
  }),
  'max-body-size': Flags.integer({
    env: 'MLSERVE_MAX_BODY_SIZE',
    default: 100,
    min: 0,
    summary: "Largest request body in MiB; bigger ones get 413 in MLflow's error envelope (0: no limit).",
  }),
  'max-concurrency': Flags.integer({
    env: 'MLSERVE_MAX_CONCURRENCY',
    default: 16,
    min: 1,
    summary: 'Requests one scorer process works on at once; more wait in the queue for the least busy scorer.',
  }),
  'max-queue': Flags.integer({
    env: 'MLSERVE_MAX_QUEUE',
    default: 256,
    min: 0,
    summary: 'Requests that may wait for a scorer when all are busy; beyond that, 503 with Retry-After.',
  }),
  'max-streams': Flags.integer({
    env: 'MLSERVE_MAX_STREAMS',
    default: 0,
    min: 0,
    summary:
      'Streamed requests ("stream": true) that may run at once; beyond that, 503 with Retry-After (0: no bound of their own, --max-concurrency and --max-queue apply).',
  }),
  'header-timeout': Flags.integer({
    env: 'MLSERVE_HEADER_TIMEOUT',
    default: 10,
    min: 1,
    summary: 'Seconds a client has to send its request headers (else 408 and the connection closes).',
  }),
  'body-timeout': Flags.integer({
    env: 'MLSERVE_BODY_TIMEOUT',
    default: 60,
    min: 1,
    summary: 'Seconds a client has to send its request body after the headers (else 408).',
  }),
  'timeout-grace': Flags.integer({
    env: 'MLSERVE_TIMEOUT_GRACE',
    default: 10,
    min: 0,
    summary: 'Seconds a timed-out request may run on in its scorer before that scorer is replaced by a fresh one.',
    description:
      "MLflow's scorer never cancels a prediction that timed out: it keeps a thread busy. After --timeout plus this grace mlserve starts a fresh scorer in its place and then kills the old one, so capacity comes back.",
  }),
  'liveness-interval': Flags.integer({
    env: 'MLSERVE_LIVENESS_INTERVAL',
    default: 5,
    min: 0,
    summary: 'Seconds between pings of idle scorers; one that misses 3 in a row is restarted (0: never ping).',
  }),
  'load-timeout': loadTimeoutFlag,
  warmup: Flags.boolean({
    default: true,
    allowNo: true,
    summary: "Before a scorer takes requests, predict the model's serving_input_example.json (--no-warmup: skip).",
  }),
  'access-log': Flags.boolean({
    default: true,
    allowNo: true,
    summary: 'Log one line per request to stdout (method, path, status, duration, scorer, request ID).',
  }),
  'log-format': Flags.option({
    options: LOG_FORMATS,
    default: 'text' as LogFormat,
    env: 'MLSERVE_LOG_FORMAT',
    summary: "text (readable), or json: one JSON object per line for mlserve's log, the access log and the scorers' output.",
  })(),
  batch: Flags.boolean({
    env: 'MLSERVE_BATCH',
    default: false,
    summary: 'Merge /invocations requests waiting for a scorer into one prediction call (only for row-by-row models).',
    description:
      'When requests queue for a scorer, the next free one takes the compatible ones (same row format, columns, params and value kinds) up to --batch-max-rows as one call, and each client gets exactly its own part of the answer. A request that finds a free scorer goes alone at once. Only for models whose predictions are row by row: a model whose output is not one prediction per row makes mlserve send each request alone and stop batching.',
  }),
  'batch-max-rows': Flags.integer({
    env: 'MLSERVE_BATCH_MAX_ROWS',
    default: 1024,
    min: 1,
    summary: 'Most rows in one merged call with --batch.',
  }),
  'batch-wait': Flags.integer({
    env: 'MLSERVE_BATCH_WAIT',
    default: 0,
    min: 0,
    summary:
      'With --batch: milliseconds a request that finds a free scorer waits for compatible requests to join its call (0: never delay a request).',
  }),
  'reload-interval': Flags.integer({
    env: 'MLSERVE_RELOAD_INTERVAL',
    default: 0,
    min: 0,
    summary:
      'Seconds between checks of a moving model reference (@alias, a stage, latest); a new version is switched in without downtime (0: off).',
    description:
      'Each check looks the reference up on the tracking server. A new version is downloaded, its environment prepared and -w new scorers warmed up beside the serving ones; then new requests go to them, requests in flight finish (up to --grace-period) and the old scorers stop. If anything fails, the old version serves on. SIGHUP checks at once (and reloads a local model directory).',
  }),
  'r-scorer': Flags.option({
    options: R_SCORERS,
    default: 'mlserve' as RScorer,
    summary: "R crate models: mlserve's own R scorer (R with httpuv and jsonlite), or mlflow: the R mlflow package's mlflow_rfunc_serve.",
  })(),
  ...multiModelFlags,
})

/** The values `this.parse` gives for serveFlags. */
export interface ServeFlagValues extends ModelFlagValues {
  port: number
  host: string
  timeout: number
  workers: number
  preload: boolean
  'fast-path': boolean
  'enable-mlserver': boolean
  'grace-period': number
  'max-body-size': number
  'max-concurrency': number
  'max-queue': number
  'max-streams': number
  'header-timeout': number
  'body-timeout': number
  'timeout-grace': number
  'liveness-interval': number
  'load-timeout': number
  warmup: boolean
  'access-log': boolean
  'log-format': LogFormat
  batch: boolean
  'batch-max-rows': number
  'batch-wait': number
  'reload-interval': number
  'r-scorer': RScorer
}

/** Serve's flags as ServeOptions (seconds and MiB become milliseconds and bytes). */
export function serveOptionsFrom(flags: ServeFlagValues): ServeOptions {
  return {
    ...modelOptionsFrom(flags),
    host: flags.host,
    port: flags.port,
    timeoutSeconds: flags.timeout,
    workers: flags.workers,
    preload: flags.preload,
    fastPath: flags['fast-path'],
    enableMlserver: flags['enable-mlserver'],
    gracePeriodMs: flags['grace-period'] * 1000,
    maxBodyBytes: flags['max-body-size'] * 1024 * 1024,
    maxConcurrency: flags['max-concurrency'],
    maxQueue: flags['max-queue'],
    maxStreams: flags['max-streams'],
    headerTimeoutMs: flags['header-timeout'] * 1000,
    bodyTimeoutMs: flags['body-timeout'] * 1000,
    timeoutGraceMs: flags['timeout-grace'] * 1000,
    livenessIntervalMs: flags['liveness-interval'] * 1000,
    loadTimeoutMs: flags['load-timeout'] * 1000,
    warmup: flags.warmup,
    accessLog: flags['access-log'],
    logFormat: flags['log-format'],
    rScorer: flags['r-scorer'],
    batchMaxRows: flags.batch ? flags['batch-max-rows'] : 0,
    batchWaitMs: flags['batch-wait'],
    reloadIntervalMs: flags['reload-interval'] * 1000,
  }
}

/** Every serve flag's default (the model URI aside), as `this.parse` gives them when none is set. */
export function serveFlagDefaults(): Omit<ServeFlagValues, 'model-uri'> {
  const values: Record<string, unknown> = {}
  for (const [name, flag] of Object.entries(serveFlags)) if (flag.default !== undefined) values[name] = flag.default
  return values as unknown as Omit<ServeFlagValues, 'model-uri'>
}
