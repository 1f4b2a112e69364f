// The one error type of mlserve: a closed set of codes, each with its own process exit code.

/** Every failure mlserve reports on purpose, with the exit code the CLI ends with. */
export const ERROR_CODES = {
  /** A flag or argument value that oclif's own parsing cannot reject (e.g. a bad --env KEY=VALUE). */
  INVALID_ARGUMENT: 2,
  /** The model path does not exist, or holds no MLmodel file. */
  MODEL_NOT_FOUND: 10,
  /** MLmodel exists but is not valid YAML or lacks required fields. */
  MLMODEL_INVALID: 11,
  /** MLmodel has neither a python_function nor a crate flavor. */
  NO_SUITABLE_FLAVOR: 12,
  /** The model URI is malformed. */
  INVALID_MODEL_URI: 13,
  /** The model URI scheme is valid but not supported by this version of mlserve. */
  UNSUPPORTED_MODEL_URI: 14,
  /** An input file for `predict` cannot be read. */
  INPUT_NOT_FOUND: 16,
  /** The model's flavor cannot be served with the options given (e.g. a crate model with --enable-mlserver). */
  BACKEND_UNSUPPORTED: 18,
  /** python_env.yaml, conda.yaml or requirements.txt is missing or invalid. */
  ENV_SPEC_INVALID: 17,
  /** The Python interpreter to use cannot be found or run. */
  PYTHON_NOT_FOUND: 20,
  /** The interpreter has no mlflow (or too old an mlflow to serve). */
  MLFLOW_NOT_FOUND: 21,
  /** The interpreter has mlflow but lacks the web server it needs (uvicorn or gunicorn). */
  SCORER_DEPENDENCY_MISSING: 22,
  /** No interpreter for the Python version the model's environment asks for. */
  PYTHON_VERSION_NOT_FOUND: 23,
  /** Creating the environment or installing its requirements failed (the installer log is named). */
  ENV_BUILD_FAILED: 24,
  /** The uv env manager was asked for and uv cannot be found. */
  UV_NOT_FOUND: 25,
  /** The conda env manager was asked for and conda cannot be found. */
  CONDA_NOT_FOUND: 26,
  /** A crate model needs R: Rscript cannot be found. */
  R_NOT_FOUND: 27,
  /** Rscript runs but lacks an R package the crate scorer needs (httpuv, jsonlite; mlflow for --r-scorer mlflow). */
  R_PACKAGE_MISSING: 28,
  /** The proxy cannot listen on host:port (in use, permission, bad address). */
  LISTEN_FAILED: 30,
  /** --auth-token-file is missing, empty (no token), readable by group or others, or not a regular file; or MLSERVE_AUTH_TOKENS holds no token. */
  AUTH_TOKENS_INVALID: 31,
  /** --tls-cert, --tls-key or --tls-client-ca cannot be read or parsed, the key does not match the certificate, or one is given without the other. */
  TLS_INVALID: 32,
  /** The scorer exited before it became ready (its own exit code is in the message, never mlserve's exit code). */
  SCORER_START_FAILED: 40,
  /** The warm-up prediction with the model's serving_input_example.json failed, so the scorer never became ready. */
  WARMUP_FAILED: 43,
  /** The first scorer did not answer its ready path within --load-timeout (the model never finished loading). */
  LOAD_TIMEOUT: 44,
  /** `mlserve predict`: the prediction process failed (exit code: its own, when it has one). */
  PREDICT_FAILED: 42,
  /** The tracking or registry URI cannot serve this model URI (e.g. mlflow-artifacts: without an http(s) tracking URI). */
  TRACKING_URI_INVALID: 50,
  /** runs:/ names a run the tracking store does not have. */
  RUN_NOT_FOUND: 51,
  /** models:/ names a registered model the registry does not have. */
  REGISTERED_MODEL_NOT_FOUND: 52,
  /** models:/ names a version (or a stage with no versions) the registered model does not have. */
  MODEL_VERSION_NOT_FOUND: 53,
  /** models:/name@alias names an alias the registered model does not have. */
  MODEL_ALIAS_NOT_FOUND: 54,
  /** models:/<model_id> names a logged model the tracking store does not have. */
  LOGGED_MODEL_NOT_FOUND: 55,
  /** The artifact path holds nothing to download (no run artifact and no logged model of that name). */
  ARTIFACT_NOT_FOUND: 56,
  /** The tracking server answered 401: credentials missing or wrong. */
  TRACKING_UNAUTHENTICATED: 57,
  /** The tracking server answered 403: the credentials lack permission. */
  TRACKING_FORBIDDEN: 58,
  /** The tracking server cannot be reached (connection refused, DNS, TLS, timeout), after retries. */
  TRACKING_UNREACHABLE: 59,
  /** The tracking server answered another error (5xx after retries, an unexpected 4xx or body). */
  TRACKING_REQUEST_FAILED: 60,
  /** The URI needs the real mlflow client (sqlite, s3, gs, azure, dbfs, databricks, plugins) and no Python with mlflow was found. */
  MLFLOW_CLIENT_NOT_FOUND: 61,
  /** The real mlflow client (`python -m mlflow artifacts download`) failed; its stderr tail is in the message. */
  MLFLOW_DOWNLOAD_FAILED: 62,
  /** An artifact listing named a path outside the download directory (.., absolute): refused. */
  UNSAFE_ARTIFACT_PATH: 63,
  /** runs:/ or models:/ with no tracking store to read: MLFLOW_TRACKING_URI unset and no ./mlruns or ./mlflow.db, or a sqlite URI naming a file that does not exist. */
  NO_TRACKING_STORE: 66,
  /** Gave up waiting (MLSERVE_LOCK_TIMEOUT) for another live process's build of the same cache entry; the holder is named. */
  LOCK_TIMEOUT: 70,
  /** An environment build took longer than --build-timeout: the installer was killed and nothing was kept. */
  BUILD_TIMEOUT: 71,
  /** A cache directory could not be written (disk full, quota, read-only, permissions): the directory is named. */
  CACHE_IO_FAILED: 72,
  /** No directory for the scorers' Unix sockets: TMPDIR too long for socket paths, missing, not writable or full, and /tmp too. */
  SOCKET_DIR_FAILED: 75,
  /** `mlserve smoke`: the model started (or --url answered) but at least one check failed; the report says which. */
  SMOKE_CHECKS_FAILED: 85,
  /** `mlserve smoke --cases`: the cases file cannot be read, is not YAML/JSON, or a case is malformed. */
  SMOKE_CASES_INVALID: 86,
  /** build-docker: no Docker daemon answers at DOCKER_HOST (or the default socket); the address and the cause are named. */
  DOCKER_UNREACHABLE: 90,
  /** build-docker: the base image is not in the daemon (mlserve never pulls: builds are offline); the hint says how to provide one. */
  DOCKER_BASE_IMAGE_MISSING: 91,
  /** build-docker: the image build failed; the failing step and its output are in the message. */
  DOCKER_BUILD_FAILED: 92,
  /** build-docker: the base image has no python<X.Y> with the ABI of the model's environment (e.g. cpython-311-x86_64-linux-gnu). */
  DOCKER_BASE_PYTHON_MISMATCH: 93,
  /** generate-dockerfile: the output directory exists and is not empty, or cannot be written. */
  DOCKER_CONTEXT_FAILED: 94,
  /** build-docker, generate-dockerfile: a symbolic link in the model directory leaves it, loops or names nothing; the link and its target are named. */
  DOCKER_MODEL_LINK_REFUSED: 96,
  /** `mlserve generate-k8s -o DIR`: the directory or a manifest file cannot be written (the directory is named). */
  MANIFEST_WRITE_FAILED: 100,
  /** Stopped by a signal before the work was done: an environment build, or a drain cut short by a second signal. */
  INTERRUPTED: 130,
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export interface MlserveErrorOptions {
  /** Things the user can do about it, one sentence each. */
  readonly suggestions?: readonly string[]
  /** Overrides the code's exit code (a child process's own exit code, for instance). */
  readonly exitCode?: number
  readonly cause?: unknown
}

export class MlserveError extends Error {
  readonly code: ErrorCode
  readonly exitCode: number
  readonly suggestions: readonly string[]

  constructor(code: ErrorCode, message: string, options: MlserveErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'MlserveError'
    this.code = code
    this.exitCode = options.exitCode ?? ERROR_CODES[code]
    this.suggestions = options.suggestions ?? []
  }
}

export function isMlserveError(error: unknown): error is MlserveError {
  return error instanceof MlserveError
}

/** The message of any thrown value, for logs and error wrapping. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** How the CLI prints an MlserveError: whole lines (never wrapped), the code, then what to do. */
export function formatError(error: MlserveError): string {
  const lines = [`Error: ${error.message}`, `  code: ${error.code} (exit ${error.exitCode})`]
  for (const suggestion of error.suggestions) lines.push(`  hint: ${suggestion}`)
  return lines.join('\n') + '\n'
}
