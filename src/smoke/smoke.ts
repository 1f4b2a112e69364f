// The orchestrator of `mlserve smoke`: starts the model through serve() (or takes --url), runs the checks,
// stops everything, and returns the report whatever happened.
import type {ServeOptions} from '../config.js'
import {MlserveError, isMlserveError, messageOf} from '../errors.js'
import {formatDuration, type Logger} from '../log.js'
import type {OutputSink} from '../scorer/process.js'
import {loadModel, type ResolvedModel} from '../load-model.js'
import {readWarmup} from '../model/warmup.js'
import type {EnvironmentFacts} from '../scorer/plan.js'
import {serve} from '../serve/serve.js'
import {redactUri} from '../uri/tracking.js'

import {readCases, type SmokeCase} from './cases.js'
import {runChecks, type ModelFacts} from './checks.js'
import {summarize, type CaseResult, type PhaseTiming, type SmokeReport} from './report.js'
import {readSignature} from './signature.js'
import {waitForReady} from './wait.js'

export interface SmokeOptions {
  /** How to start the model (host 127.0.0.1, port 0); ignored with `url`. */
  readonly serve: ServeOptions
  /** Check a server that is already running instead; the model (serve.modelUri) is then optional. */
  readonly url?: string
  readonly casesFile?: string
  /** Per request (serve's --timeout). */
  readonly timeoutMs: number
  /** With `url`: how long to wait for GET /ping to answer 200 before the checks (0: not at all). */
  readonly waitMs?: number
  /** With `url`: headers every request carries (its credentials, an API key; see credentials.ts). */
  readonly headers?: Readonly<Record<string, string>>
}

export interface SmokeIo {
  readonly log: Logger
  /** Where the scorers' output goes (stdout is kept for --json). */
  readonly stderr: OutputSink
  readonly stop: AbortSignal
  readonly force: AbortSignal
}

export interface SmokeOutcome {
  readonly report: SmokeReport
  /** Why start-up failed (serve's error, with its exit code), if it did. */
  readonly startupError?: unknown
  readonly interrupted: boolean
}

const STARTUP = 'start-up'
const LATER_CASES = ['health', 'input example', 'bad input is refused', 'output schema']

async function factsOf(model: ResolvedModel, log: Logger): Promise<ModelFacts> {
  const signature = await readSignature(model.mlmodel.path, (message) => log.warn(message))
  const warmup = model.flavor === 'pyfunc' ? await readWarmup(model.ref.localDir, model.mlmodel) : undefined
  return {
    signature,
    example: warmup ? {body: warmup.body, source: warmup.source} : undefined,
    streamable: model.mlmodel.pyfunc?.streamable === true,
  }
}

const describeError = (error: unknown) => (isMlserveError(error) ? `${error.code}: ${error.message}` : messageOf(error))

/** The later cases when start-up did not get that far. */
const skippedCases = (reason: string, cases: readonly SmokeCase[]): CaseResult[] =>
  [...LATER_CASES.slice(0, 2), ...cases.map((smokeCase) => smokeCase.name), ...LATER_CASES.slice(2)].map((name) => ({
    name,
    status: 'skipped',
    durationMs: 0,
    message: reason,
  }))

/** What one way of running (start the model, or --url) found. */
interface Run {
  readonly startup: CaseResult
  readonly later: readonly CaseResult[]
  readonly startupError?: unknown
  readonly url?: string
  readonly modelDir?: string
}

interface RunContext {
  readonly cases: readonly SmokeCase[]
  readonly log: Logger
  readonly phases: PhaseTiming[]
  /** What serve reported as data while starting. */
  readonly served: {version?: string; environment?: EnvironmentFacts}
  readonly onCase: (result: CaseResult) => void
}

export async function runSmoke(options: SmokeOptions, io: SmokeIo): Promise<SmokeOutcome> {
  const startedAt = performance.now()
  // A bad cases file is found before anything starts (and is not a smoke failure: it throws).
  const cases = options.casesFile ? await readCases(options.casesFile) : []
  const context: RunContext = {
    cases,
    log: io.log,
    phases: [],
    served: {},
    onCase: (result) => io.log.info(`smoke: ${result.name}: ${result.status}`),
  }
  const run = options.url ? await checkRunningServer(options.url, options, io, context) : await startAndCheck(options, io, context)

  const all = [run.startup, ...run.later]
  const report: SmokeReport = {
    // The report is printed, written as --json and JUnit: every URI in it without its credentials.
    modelUri: options.serve.modelUri ? redactUri(options.serve.modelUri) : undefined,
    modelDir: run.modelDir,
    modelVersion: context.served.version ?? /^models:\/[^/@]+\/(\d+)$/.exec(options.serve.modelUri)?.[1],
    url: run.url && redactUri(run.url),
    environment: options.url
      ? undefined
      : {manager: options.serve.envManager, key: context.served.environment?.key, detail: context.served.environment?.detail},
    phases: context.phases,
    cases: all,
    durationMs: performance.now() - startedAt,
    summary: summarize(all),
  }
  return {report, startupError: run.startupError, interrupted: io.stop.aborted}
}

/** --url: reads the model (when -m is given) for its signature and example, waits if asked, checks. */
async function checkRunningServer(url: string, options: SmokeOptions, io: SmokeIo, context: RunContext): Promise<Run> {
  const {cases, log} = context
  const start = performance.now()
  let model: ResolvedModel | undefined
  try {
    if (options.serve.modelUri)
      model = await loadModel(options.serve.modelUri, options.serve.cwd, log, {
        env: options.serve.env,
        signal: io.stop,
        python: options.serve.python,
      })
  } catch (error) {
    const startup: CaseResult = {name: STARTUP, status: 'failed', durationMs: performance.now() - start, message: describeError(error)}
    return {startup, later: skippedCases('the model could not be read', cases), startupError: error, url}
  }

  const modelDir = model?.ref.localDir
  const waited = options.waitMs ? await waitForReady(url, options.waitMs, io.stop, options.headers) : undefined
  if (waited && !waited.ready) {
    const message = io.stop.aborted
      ? 'interrupted'
      : `GET /ping did not answer 200 within --wait ${options.waitMs! / 1000} s (last: ${waited.last})`
    const startup: CaseResult = {name: STARTUP, status: 'failed', durationMs: performance.now() - start, message}
    return {startup, later: skippedCases(io.stop.aborted ? 'interrupted' : 'the server did not get ready', cases), url, modelDir}
  }

  const startup: CaseResult = waited
    ? {
        name: STARTUP,
        status: 'passed',
        durationMs: performance.now() - start,
        message: `--url: ready (GET /ping 200) after ${formatDuration(performance.now() - start)}`,
      }
    : {name: STARTUP, status: 'skipped', durationMs: 0, message: '--url: checking a running server, nothing started'}
  const facts = model ? await factsOf(model, log) : undefined
  const later = await runChecks({
    url,
    headers: options.headers,
    model: facts,
    cases,
    timeoutMs: options.timeoutMs,
    signal: io.stop,
    onCase: context.onCase,
  })
  return {startup, later, url, modelDir}
}

/** Starts the model through serve() on 127.0.0.1:0, runs the checks once it is ready, then stops it. */
async function startAndCheck(options: SmokeOptions, io: SmokeIo, context: RunContext): Promise<Run> {
  const {cases, log, phases} = context
  const startedAt = performance.now()
  const done = new AbortController()
  let checks: Promise<CaseResult[]> | undefined
  let url: string | undefined
  let modelDir: string | undefined
  let startupError: unknown
  try {
    await serve(
      {...options.serve, host: '127.0.0.1', port: 0},
      {
        log,
        stdout: io.stderr,
        stderr: io.stderr,
        stop: AbortSignal.any([io.stop, done.signal]),
        force: io.force,
        onPhase: (name, ms) => phases.push({name, ms}),
        onModel: (served) => (context.served.version = served.version),
        onEnvironment: (environment) => (context.served.environment = environment),
        onReady(ready) {
          url = ready.url
          modelDir = ready.model.ref.localDir
          checks = factsOf(ready.model, log)
            .then((model) => runChecks({url: ready.url, model, cases, timeoutMs: options.timeoutMs, signal: io.stop, onCase: context.onCase}))
            .catch((error: unknown): CaseResult[] => [
              {name: 'checks', status: 'failed', durationMs: 0, message: `the checks could not run: ${messageOf(error)}`},
            ])
            .finally(() => done.abort())
        },
      },
    )
  } catch (error) {
    // After ready, serve only throws when a second signal cut the stop short: the checks say what ran.
    if (!checks) startupError = error
  }

  const timings = phases
    .filter((phase) => phase.name !== 'total')
    .map((phase) => `${phase.name} ${formatDuration(phase.ms)}`)
    .join(', ')
  if (checks) {
    const total = phases.find((phase) => phase.name === 'total')
    return {startup: {name: STARTUP, status: 'passed', durationMs: total?.ms ?? 0, message: timings}, later: await checks, url, modelDir}
  }

  const reason = startupError ? describeError(startupError) : 'interrupted before the model was ready'
  const startup: CaseResult = {
    name: STARTUP,
    status: 'failed',
    durationMs: performance.now() - startedAt,
    message: timings ? `${reason}\nphases done before: ${timings}` : reason,
  }
  return {startup, later: skippedCases(startupError ? 'the model did not start' : 'interrupted', cases), startupError, url, modelDir}
}

/** The error the command ends with: start-up's own, an interruption, failed checks; undefined when all passed. */
export function outcomeError(outcome: SmokeOutcome): unknown {
  if (outcome.startupError) return outcome.startupError
  if (outcome.interrupted) return new MlserveError('INTERRUPTED', 'Interrupted: the smoke test did not finish.')
  const failed = outcome.report.cases.filter((result) => result.status === 'failed')
  if (failed.length === 0) return undefined
  return new MlserveError(
    'SMOKE_CHECKS_FAILED',
    `${failed.length} smoke check${failed.length === 1 ? '' : 's'} failed: ${failed.map((result) => result.name).join(', ')}`,
    {
      suggestions: ['The summary above (and --junit / --json) shows what each check expected and got.'],
    },
  )
}
