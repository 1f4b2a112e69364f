// The options object that flows from the CLI flags down through every stage.

/** Environment variables: what a child process gets, what MLFLOW_* / MLSERVE_* defaults are read from. */
export type EnvVars = Readonly<Record<string, string | undefined>>

export const ENV_MANAGERS = ['local', 'virtualenv', 'uv', 'conda'] as const
export type EnvManager = (typeof ENV_MANAGERS)[number]

/** Where the model comes from and which Python environment serves it: shared by serve and predict. */
export interface ModelOptions {
  readonly modelUri: string
  readonly envManager: EnvManager
  readonly installMlflow: boolean
  /** The interpreter the `local` manager uses (a path or a name on PATH). */
  readonly python: string
  /** The directory relative model paths are resolved against. */
  readonly cwd: string
  /** The environment children inherit (before mlserve adds its own variables). */
  readonly env: EnvVars
  /** Install uvicorn's speedups (uvloop, httptools) into environments mlserve builds. */
  readonly speedups: boolean
  /** How long building an environment may take (0: no limit); then BUILD_TIMEOUT and nothing is kept. */
  readonly buildTimeoutMs: number
}

export interface ServeOptions extends ModelOptions {
  readonly host: string
  /** 0 picks a free port; the chosen one is logged. */
  readonly port: number
  readonly timeoutSeconds: number
  readonly workers: number
  /** pyfunc with uvicorn: load the model once and fork the scorers from it (else: spawn mode). */
  readonly preload?: boolean
  /** pyfunc with uvicorn: answer a successful /invocations through mlserve_fastpath.py (default on). */
  readonly fastPath?: boolean
  readonly enableMlserver: boolean
  /** How long in-flight requests may take to finish after SIGINT/SIGTERM. */
  readonly gracePeriodMs: number
  /** Request bodies above this get 413 (0: no limit). */
  readonly maxBodyBytes: number
  /** Requests one scorer process works on at once. */
  readonly maxConcurrency: number
  /** Requests that may wait for a scorer before new ones get 503. */
  readonly maxQueue: number
  /** Streamed requests that may run at once (0: no bound of their own). */
  readonly maxStreams?: number
  /** A client must send its headers within this, and its body within bodyTimeoutMs more (408). */
  readonly headerTimeoutMs: number
  readonly bodyTimeoutMs: number
  /** How long a timed-out request's work may run on before its scorer is replaced. */
  readonly timeoutGraceMs: number
  /** How often idle scorers are pinged (0: never). */
  readonly livenessIntervalMs: number
  /** A new scorer must answer its ready path within this long of its start (0: no bound). */
  readonly loadTimeoutMs: number
  /** Run the model's serving_input_example.json before declaring a scorer ready. */
  readonly warmup: boolean
  readonly accessLog: boolean
  readonly logFormat: LogFormat
  /** For crate models: mlserve's own R scorer, or the R mlflow package's mlflow_rfunc_serve. */
  readonly rScorer: RScorer
  /** --batch: most rows in one merged /invocations call; 0 (or absent): batching off. */
  readonly batchMaxRows?: number
  /** --batch-wait: how long a batchable request that found a free scorer waits for others to join. */
  readonly batchWaitMs?: number
  /** --reload-interval: how often a moving reference (an alias, a stage, `latest`) is checked; 0 (or absent): never. */
  readonly reloadIntervalMs?: number
  /** API keys, TLS, CORS and a path prefix in front of every route (absent: none, mlflow's behaviour). */
  readonly frontDoor?: FrontDoorOptions
}

/** The front door's flags (see docs/front-door.md); every part is off when its field is unset or empty. */
export interface FrontDoorOptions {
  /** --auth-token-file: one token per line, `#` comments; re-read on SIGHUP. */
  readonly authTokenFile?: string
  /** MLSERVE_AUTH_TOKENS, comma-separated. */
  readonly authTokens?: readonly string[]
  /** --metrics-public: /metrics answers without a token. */
  readonly metricsPublic?: boolean
  /** --tls-cert and --tls-key: serve HTTPS; --tls-client-ca: require client certificates signed by it. */
  readonly tlsCert?: string
  readonly tlsKey?: string
  readonly tlsClientCa?: string
  /** --cors-origin: origins allowed to call from a browser (`*`: any). */
  readonly corsOrigins?: readonly string[]
  /** --static-prefix: every route served under this path (e.g. /p). */
  readonly staticPrefix?: string
}

export const LOG_FORMATS = ['text', 'json'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]
export const R_SCORERS = ['mlserve', 'mlflow'] as const
/** Which R server answers crate models: mlserve's own scorer (httpuv + jsonlite only), or mlflow's mlflow_rfunc_serve. */
export type RScorer = (typeof R_SCORERS)[number]

export interface PrepareEnvOptions extends ModelOptions {
  /** Also install mlserver and mlserver-mlflow: the environment `serve --enable-mlserver` uses. */
  readonly enableMlserver: boolean
}

export interface PredictOptions extends ModelOptions {
  readonly inputPath?: string
  readonly outputPath?: string
  readonly contentType: 'json' | 'csv'
  /** Extra KEY=VALUE variables for the prediction process. */
  readonly extraEnv: Readonly<Record<string, string>>
}

/** `--no-conda` forces the local manager, as in mlflow. */
export function effectiveEnvManager(envManager: EnvManager, noConda: boolean): EnvManager {
  return noConda ? 'local' : envManager
}
