// `mlserve serve`: mlflow's flags, parsed once into ServeOptions and handed to the orchestrator.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {modelFlags, modelOptionsFrom} from '../cli/flags.js'
import {withStopSignals} from '../cli/signals.js'
import {createLogger} from '../log.js'

export default class Serve extends BaseCommand {
  static override summary = 'Serve an MLflow model over HTTP, as `mlflow models serve` does.'

  static override description = `Starts MLflow's own scoring server for the model as a child process and puts a proxy in front of it on --host:--port. The REST contract is MLflow's: POST /invocations, GET /ping, /health and /version, with the same status codes, media types and bodies.

/ping and /health answer 503 until the model has loaded. SIGINT or SIGTERM stops accepting connections, lets requests in flight finish (up to --grace-period), stops the scorer and exits 0; a second signal stops at once.`

  static override examples = [
    '<%= config.bin %> serve -m ./my-model --env-manager local -p 5000',
    "curl -H 'Content-Type: application/json' -d '{\"dataframe_split\": {\"columns\": [\"a\", \"b\"], \"data\": [[1, 2]]}}' http://127.0.0.1:5000/invocations",
  ]

  static override flags = {
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
    'enable-mlserver': Flags.boolean({
      default: false,
      summary: 'Serve with Seldon MLServer instead of MLflow\'s scoring server (not available yet).',
    }),
    'grace-period': Flags.integer({
      env: 'MLSERVE_GRACE_PERIOD',
      default: 30,
      min: 0,
      summary: 'Seconds requests in flight may take to finish after SIGINT/SIGTERM.',
    }),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Serve)
    const {serve} = await import('../serve.js')
    const log = createLogger(process.stderr, {tty: process.stderr.isTTY})
    await withStopSignals(log, ({stop, force}) =>
      serve(
        {
          ...modelOptionsFrom(flags),
          host: flags.host,
          port: flags.port,
          timeoutSeconds: flags.timeout,
          workers: flags.workers,
          enableMlserver: flags['enable-mlserver'],
          gracePeriodMs: flags['grace-period'] * 1000,
        },
        {log, stdout: process.stdout, stderr: process.stderr, stop, force},
      ),
    )
  }
}
