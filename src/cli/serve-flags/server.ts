// Serve's flags for the listening server: where it listens and how long and how much a client may send.
import {Flags} from '@oclif/core'

export const serverFlags = {
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
}
