// `mlserve serve`: mlflow's flags, parsed once into ServeOptions and handed to the orchestrator.
import {BaseCommand} from '../cli/base-command.js'
import {selectModels} from '../cli/serve-flags/multi-model.js'
import {withReloadSignal} from '../cli/reload-signal.js'
import {serveFlags, serveOptionsFrom} from '../cli/serve-flags.js'
import {withStopSignals} from '../cli/signals.js'
import {createLogger, jsonLines} from '../log.js'

export default class Serve extends BaseCommand {
  static override summary = 'Serve an MLflow model over HTTP, as `mlflow models serve` does.'

  static override description = `Starts -w processes of MLflow's own scoring server for the model (the R scorer for crate models, MLServer with --enable-mlserver) and puts a proxy in front of them on --host:--port. The REST contract is MLflow's: POST /invocations, GET /ping, /health and /version, with the same status codes, media types and bodies.

The proxy sends each request to the least busy scorer, restarts scorers that exit or stop answering (with backoff; after 5 failures within 60 s it stops and /livez answers 503), and replaces a scorer whose timed-out work runs on. /ping and /health answer 503 until a scorer has loaded the model and predicted its serving_input_example.json. mlserve also answers GET /livez, /readyz (for orchestrators) and /metrics (Prometheus), and gives every response an X-Request-ID.

Words: a scorer is one process that loads the model and predicts (MLflow's scoring server, the R scorer or MLServer); the warm-up is the prediction of the model's input example each new scorer makes before it takes requests; a generation is one model version being served (--reload-interval switches to the next); to drain is to stop taking new requests and let those in flight finish.

SIGINT or SIGTERM makes /readyz 503, stops accepting connections, lets requests in flight finish (up to --grace-period), stops the scorers and exits 0; a second signal stops at once.`

  static override examples = [
    '<%= config.bin %> serve -m ./my-model --env-manager local -p 5000',
    'curl -H \'Content-Type: application/json\' -d \'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}\' http://127.0.0.1:5000/invocations',
  ]

  static override flags = serveFlags

  async run(): Promise<void> {
    const {flags} = await this.parse(Serve)
    // Names and the --models file are checked before anything starts (usage errors exit 2 at once).
    const selection = await selectModels(flags)
    const options = serveOptionsFrom({...flags, 'model-uri': selection.kind === 'single' ? selection.uri : ''})
    const json = flags['log-format'] === 'json'
    const log = createLogger(process.stderr, {tty: process.stderr.isTTY, format: flags['log-format']})
    const stdout = json ? jsonLines(process.stdout) : process.stdout
    const stderr = json ? jsonLines(process.stderr) : process.stderr
    const {serve} = await import('../serve/serve.js')
    const {serveModels} = await import('../serve/serve-models.js')
    await withReloadSignal(log, async (reload) =>
      withStopSignals(
        log,
        async ({stop, force}) => {
          const io = {log, stdout, stderr, accessLog: process.stdout, stop, force, onReloadRequest: reload.subscribe}
          await (selection.kind === 'single'
            ? serve(options, io)
            : serveModels(options, {...selection, batchMaxRows: flags['batch-max-rows']}, io))
        },
        {ownsForce: true},
      ),
    )
  }
}
