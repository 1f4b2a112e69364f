// The orchestrator of `mlserve smoke`: starts the model through serve() (or takes --url), runs the checks,
// stops everything, and returns the report whatever happened.
import {constants} from 'node:fs'
import {access, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {ServeOptions} from '../config.js'
import {MlserveError, isMlserveError, messageOf} from '../errors.js'
import {formatDuration, type Logger, type Phase} from '../log.js'
import type {OutputSink} from '../scorer/process.js'
import {loadModel, readWarmup, serve, type ResolvedModel} from '../serve.js'

import {readCases, type SmokeCase} from './cases.js'
import {runChecks, type ModelFacts} from './checks.js'
import {toJunit} from './junit.js'
import {formatSummary, summarize, toJson, type CaseResult, type PhaseTiming, type SmokeReport} from './report.js'
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

/** Records what serve's log says about the resolved version and the environment, passing every line on. */
function observingLogger(log: Logger, facts: {version?: string; envKey?: string; envDetail?: string}): Logger {
  const observe = (message: string) => {
    facts.version ??= /is version (\S+) of registered model/.exec(message)?.[1]
    facts.envKey ??= /(?:using cached|building) environment (\S+)/.exec(message)?.[1]
  }

  return {
    info(message) {
      observe(message)
      log.info(message)
    },
    warn: (message) => log.warn(message),
    phase(name, options): Phase {
      const phase = log.phase(name, options)
      return {
        done(detail) {
          if (name.startsWith('prepare environment') && detail) facts.envDetail = detail
          return phase.done(detail)
        },
      }
    },
  }
}

async function factsOf(model: ResolvedModel, log: Logger): Promise<ModelFacts> {
  const signature = await readSignature(model.mlmodel.path, (message) => log.warn(message))
  const warmup = model.backend === 'pyfunc' ? await readWarmup(model.ref.localDir, model.mlmodel) : undefined
  return {signature, example: warmup ? {body: warmup.body, source: warmup.source} : undefined}
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

export async function runSmoke(options: SmokeOptions, io: SmokeIo): Promise<SmokeOutcome> {
  const startedAt = performance.now()
  // A bad cases file is found before anything starts (and is not a smoke failure: it throws).
  const cases = options.casesFile ? await readCases(options.casesFile) : []
  const facts: {version?: string; envKey?: string; envDetail?: string} = {}
  const log = observingLogger(io.log, facts)
  const phases: PhaseTiming[] = []
  const progress = (result: CaseResult) => io.log.info(`smoke: ${result.name}: ${result.status}`)
  let startup: CaseResult
  let later: CaseResult[]
  let startupError: unknown
  let url = options.url
  let modelDir: string | undefined

  if (options.url) {
    let model: ResolvedModel | undefined
    const start = performance.now()
    try {
      if (options.serve.modelUri) model = await loadModel(options.serve.modelUri, options.serve.cwd, log, {env: options.serve.env, signal: io.stop, python: options.serve.python})
    } catch (error) {
      startupError = error
    }

    modelDir = model?.ref.localDir
    const waited = !startupError && options.waitMs ? await waitForReady(options.url, options.waitMs, io.stop) : undefined
    if (startupError) {
      startup = {name: STARTUP, status: 'failed', durationMs: performance.now() - start, message: describeError(startupError)}
      later = skippedCases('the model could not be read', cases)
    } else if (waited && !waited.ready) {
      const message = io.stop.aborted ? 'interrupted' : `GET /ping did not answer 200 within --wait ${options.waitMs! / 1000} s (last: ${waited.last})`
      startup = {name: STARTUP, status: 'failed', durationMs: performance.now() - start, message}
      later = skippedCases(io.stop.aborted ? 'interrupted' : 'the server did not get ready', cases)
    } else {
      startup = waited
        ? {name: STARTUP, status: 'passed', durationMs: performance.now() - start, message: `--url: ready (GET /ping 200) after ${formatDuration(performance.now() - start)}`}
        : {name: STARTUP, status: 'skipped', durationMs: 0, message: '--url: checking a running server, nothing started'}
      later = await runChecks({
        url: options.url,
        model: model ? await factsOf(model, log) : undefined,
        cases,
        timeoutMs: options.timeoutMs,
        signal: io.stop,
        onCase: progress,
      })
    }
  } else {
    const done = new AbortController()
    let checks: Promise<CaseResult[]> | undefined
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
          onReady(ready) {
            url = ready.url
            modelDir = ready.model.ref.localDir
            checks = factsOf(ready.model, log)
              .then((model) => runChecks({url: ready.url, model, cases, timeoutMs: options.timeoutMs, signal: io.stop, onCase: progress}))
              .catch((error: unknown): CaseResult[] => [{name: 'checks', status: 'failed', durationMs: 0, message: `the checks could not run: ${messageOf(error)}`}])
              .finally(() => done.abort())
          },
        },
      )
    } catch (error) {
      startupError = checks ? undefined : error
    }

    const total = phases.find((phase) => phase.name === 'total')
    const timings = phases.filter((phase) => phase.name !== 'total').map((phase) => `${phase.name} ${formatDuration(phase.ms)}`).join(', ')
    if (checks) {
      startup = {name: STARTUP, status: 'passed', durationMs: total?.ms ?? 0, message: timings}
      later = await checks
    } else {
      const reason = startupError ? describeError(startupError) : 'interrupted before the model was ready'
      const message = timings ? `${reason}\nphases done before: ${timings}` : reason
      startup = {name: STARTUP, status: 'failed', durationMs: performance.now() - startedAt, message}
      later = skippedCases(startupError ? 'the model did not start' : 'interrupted', cases)
    }
  }

  const all = [startup, ...later]
  const report: SmokeReport = {
    modelUri: options.serve.modelUri || undefined,
    modelDir,
    modelVersion: facts.version ?? /^models:\/[^/@]+\/(\d+)$/.exec(options.serve.modelUri)?.[1],
    url,
    environment: options.url ? undefined : {manager: options.serve.envManager, key: facts.envKey, detail: facts.envDetail},
    phases,
    cases: all,
    durationMs: performance.now() - startedAt,
    summary: summarize(all),
  }
  return {report, startupError, interrupted: io.stop.aborted}
}

export interface ReportTargets {
  readonly stderr: {write(chunk: string): unknown}
  readonly stdout: {write(chunk: string): unknown}
  readonly json: boolean
  readonly junitFile?: string
}

/** Writes the summary (stderr), the --json document (stdout) and the --junit file. */
export async function writeReports(report: SmokeReport, targets: ReportTargets): Promise<void> {
  targets.stderr.write(formatSummary(report))
  if (targets.json) targets.stdout.write(toJson(report) + '\n')
  if (targets.junitFile) await writeFile(targets.junitFile, toJunit(report))
}

/** Fails fast (before anything starts) when the --junit file could not be written at the end. */
export async function checkWritable(file: string): Promise<void> {
  try {
    await access(path.dirname(path.resolve(file)), constants.W_OK)
  } catch (error) {
    throw new MlserveError('INVALID_ARGUMENT', `--junit ${file}: cannot write there (${messageOf(error)})`, {cause: error})
  }
}

/** The error the command ends with: start-up's own, an interruption, failed checks; undefined when all passed. */
export function outcomeError(outcome: SmokeOutcome): unknown {
  if (outcome.startupError) return outcome.startupError
  if (outcome.interrupted) return new MlserveError('INTERRUPTED', 'Interrupted: the smoke test did not finish.')
  const failed = outcome.report.cases.filter((result) => result.status === 'failed')
  if (failed.length === 0) return undefined
  return new MlserveError('SMOKE_CHECKS_FAILED', `${failed.length} smoke check${failed.length === 1 ? '' : 's'} failed: ${failed.map((result) => result.name).join(', ')}`, {
    suggestions: ['The summary above (and --junit / --json) shows what each check expected and got.'],
  })
}
