// Serve's flags for the scorers: how many, how they start (preload, fast path, MLServer, R), how many
// requests each takes and waits for, and when one is restarted or replaced.
import {Flags} from '@oclif/core'

import {R_SCORERS, type RScorer} from '../../config.js'

/** How long a scorer may take to load the model. */
const loadTimeoutFlag = Flags.integer({
  env: 'MLSERVE_LOAD_TIMEOUT',
  default: 600,
  min: 0,
  summary:
    'Seconds a new scorer may take to load the model (answer /ping); past it the start fails (exit 44), or a later scorer is restarted (0: no bound).',
})

export const scorersFlags = {
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
      "pyfunc models served with uvicorn (mlflow >= 2.21), spawn and --preload. The scorer runs mlserve's mlserve_fastpath.py, which loads the model as MLflow's app module does and keeps MLflow's app for every route; for POST /invocations it calls MLflow's own invocations() directly, so the answer's bytes are MLflow's. Anything else (errors other than MLflow's, a request without Content-Type, another mlflow app layout, FastAPI's OpenTelemetry on) is answered by MLflow's app, and a model or mlflow version it cannot check logs why and runs MLflow's app unchanged. With it, POST /invocations goes to the scorer as length-prefixed frames on a Unix socket of its own (the lean protocol: no HTTP server or framework around invocations()), errors answered by MLflow's app in the same process. --no-fast-path serves MLflow's app module as it is, over HTTP.",
  }),
  'enable-mlserver': Flags.boolean({
    default: false,
    summary: "Serve with Seldon MLServer instead of MLflow's scoring server.",
    description:
      "mlserve installs mlserver and mlserver-mlflow into the model's environment (with --env-manager local they must already be there) and proxies /invocations and MLServer's V2 routes (/v2/...). --timeout is enforced by the proxy. Not for R crate models.",
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
  'r-scorer': Flags.option({
    options: R_SCORERS,
    default: 'mlserve' as RScorer,
    summary: "R crate models: mlserve's own R scorer (R with httpuv and jsonlite), or mlflow: the R mlflow package's mlflow_rfunc_serve.",
  })(),
}
