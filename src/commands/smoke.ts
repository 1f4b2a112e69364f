// `mlserve smoke`: start the model as `serve` does, check it answers and keeps its contract, report, stop.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {modelFlags} from '../cli/flags.js'
import {serveFlags} from '../cli/serve-flags.js'
import {smokeServeOptions} from '../cli/smoke-options.js'
import {withStopSignals} from '../cli/signals.js'
import {MlserveError} from '../errors.js'
import {createLogger} from '../log.js'

export default class Smoke extends BaseCommand {
  static override summary = 'Smoke-test a model for CI: start it as `serve` does, check it, report, stop.'

  static override description = `Starts the model exactly as \`mlserve serve\` would (same resolution, environment, scorer and proxy) on a free port of 127.0.0.1, waits until it is ready, runs the checks, stops everything and exits. With --url it checks a server that is already running instead and starts nothing.

Checks, one test case each: start-up (with the time of each phase), health (/ping and /version), input example (the model's serving_input_example.json, else one row built from its signature, must get a 200), each case of --cases, bad input is refused (a body without a required column gets a 4xx with MLflow's error envelope and the server still answers /ping), and output schema (the predictions of every successful case conform to the signature's outputs).

A summary goes to stderr, ending with "N passed, N failed, N skipped"; --json prints the report on stdout and --junit writes JUnit XML, also when start-up fails. Exit 0 when every check passed (skips allowed), 85 when a check failed; start-up failures exit with serve's codes.

SIGINT or SIGTERM stops the checks and the model, writes the report (what was not run is "interrupted") and exits 130; a second signal stops at once, without a report.`

  static override examples = [
    '<%= config.bin %> smoke -m models:/iris@champion --junit smoke.xml',
    '<%= config.bin %> smoke -m ./my-model --env-manager local --cases smoke-cases.yaml --json',
    '<%= config.bin %> smoke --url http://127.0.0.1:8080 -m ./my-model',
    '<%= config.bin %> smoke --url http://127.0.0.1:8080 --model fraud -m models:/fraud@champion',
  ]

  static override flags = {
    ...modelFlags,
    'model-uri': Flags.string({
      ...modelFlags['model-uri'],
      required: false,
      summary: 'The model (required unless --url): a directory, file:, runs:/, models:/ or another artifact URI, as for serve.',
    }),
    url: Flags.string({
      summary: 'Check the server already running at this URL (http://host:port) instead of starting one.',
      description: 'Nothing is started. The model (-m), when given, is still read for its signature and input example.',
    }),
    model: Flags.string({
      summary: 'With --url: check this one model of a multi-model server, through its /models/<name>/ routes.',
      description:
        'The checks call /models/<name>/invocations, /models/<name>/ping and /models/<name>/version instead of /invocations, /ping and /version; -m names that model for its signature and example.',
    }),
    wait: Flags.integer({
      default: 0,
      min: 0,
      summary: 'With --url: seconds to wait for GET /ping to answer 200 (a server still starting) before the checks.',
    }),
    'auth-token-file': Flags.string({
      summary: 'With --url: send the first API key in this file (as serve reads it: mode 600) as X-API-Key. MLSERVE_AUTH_TOKENS works too.',
      description:
        "Without it, the first key of MLSERVE_AUTH_TOKENS (the variable serve reads) is sent, if set. The URL's own user:password (http://user:pw@host:port) goes as Basic auth.",
    }),
    cases: Flags.string({
      summary:
        'A YAML or JSON file of extra cases: [{name, body | body_file, content_type, expect: {status, predictions, tolerance, contains}}].',
    }),
    junit: Flags.string({summary: 'Write the report as JUnit XML to this file (also when start-up fails).'}),
    json: Flags.boolean({default: false, summary: 'Print the report as one JSON document on stdout.'}),
    timeout: serveFlags.timeout,
    'load-timeout': serveFlags['load-timeout'],
    'enable-mlserver': serveFlags['enable-mlserver'],
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Smoke)
    const url = flags.url
    if (!flags['model-uri'] && !url) {
      throw new MlserveError('INVALID_ARGUMENT', 'Missing required flag --model-uri (or --url to check a running server).')
    }

    if (flags.wait > 0 && !url)
      throw new MlserveError('INVALID_ARGUMENT', '--wait applies to --url only (a server mlserve starts is waited for anyway).')
    if (url !== undefined && !/^https?:\/\/[^/]+\/?$/.test(url)) {
      throw new MlserveError('INVALID_ARGUMENT', `--url ${url} is not http(s)://host:port`)
    }

    if (flags['auth-token-file'] !== undefined && !url) {
      throw new MlserveError('INVALID_ARGUMENT', '--auth-token-file applies to --url only (the server smoke starts has no API keys).')
    }

    if (flags.model !== undefined && !url) {
      throw new MlserveError('INVALID_ARGUMENT', '--model applies to --url only (one model of a running multi-model server).', {
        suggestions: ['Smoke-test a model by starting it: mlserve smoke -m URI.'],
      })
    }

    const {smokeBaseUrl} = await import('../smoke/model-route.js')
    const base = url === undefined ? undefined : smokeBaseUrl(url, flags.model)
    const [{runSmoke, outcomeError}, {checkWritable, writeReports}, {targetOf}] = await Promise.all([
      import('../smoke/smoke.js'),
      import('../smoke/write.js'),
      import('../smoke/credentials.js'),
    ])
    // Checked (the file read, its mode) before anything else; the URL's credentials are never logged.
    const target = url === undefined ? undefined : await targetOf(url, flags['auth-token-file'], process.env.MLSERVE_AUTH_TOKENS)
    if (flags.junit) await checkWritable(flags.junit)
    const log = createLogger(process.stderr, {tty: process.stderr.isTTY})
    const outcome = await withStopSignals(log, ({stop, force}) =>
      runSmoke(
        {
          serve: smokeServeOptions({...flags, 'model-uri': flags['model-uri'] ?? ''}),
          url: base,
          casesFile: flags.cases,
          timeoutMs: flags.timeout * 1000,
          waitMs: flags.wait * 1000,
          headers: target?.headers,
        },
        {log, stderr: process.stderr, stop, force},
      ),
    )
    await writeReports(outcome.report, {stderr: process.stderr, stdout: process.stdout, json: flags.json, junitFile: flags.junit})
    const error = outcomeError(outcome)
    if (error) throw error
  }
}
