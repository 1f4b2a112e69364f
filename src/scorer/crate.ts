// The backend for R `crate` models: checks that R can serve them, and starts one R scorer per slot
// (mlserve's own templates/r/scorer.R, or the R mlflow package's mlflow_rfunc_serve).
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import type {RScorer, EnvVars} from '../config.js'
import {MlserveError, messageOf} from '../errors.js'
import type {Mlmodel} from '../model/mlmodel.js'
import {templatePath} from '../paths.js'
import type {PlainResponse} from '../upstream.js'
import {run, tailLines} from '../util/exec.js'
import {which} from '../util/which.js'
import type {Backend, SlotInfo} from './backend.js'
import type {ScorerCommand} from './command.js'

export interface CrateBackendInput {
  readonly modelDir: string
  readonly mlmodel: Mlmodel
  /** The environment R runs with (PATH finds Rscript; R_LIBS and friends find packages). */
  readonly env: EnvVars
  readonly rScorer: RScorer
  /** What GET /version answers; defaults to MLmodel's mlflow_version, then mlserve's own version. */
  readonly mlflowVersion?: string
}

/** The Debian packages that give R and everything mlserve's R scorer needs. */
export const R_DEBIAN_PACKAGES = ['r-base-core', 'r-cran-httpuv', 'r-cran-jsonlite'] as const
const APT_INSTALL = `apt-get install -y --no-install-recommends ${R_DEBIAN_PACKAGES.join(' ')}`

/** The variable that hands the model directory to mlflow_rfunc_serve, so no path is ever spliced into R code. */
export const R_MODEL_DIR_VARIABLE = 'MLSERVE_R_MODEL_DIR'

/** R packages each scorer loads. */
export function requiredRPackages(rScorer: RScorer): string[] {
  return rScorer === 'mlflow' ? ['httpuv', 'jsonlite', 'mlflow'] : ['httpuv', 'jsonlite']
}

/** The command for one R scorer process: mlserve's on a Unix socket, mlflow's on a TCP port of 127.0.0.1. */
export function crateScorerCommand(input: {
  readonly rscript: string
  readonly modelDir: string
  readonly rScorer: RScorer
  readonly endpoint: string | number
}): ScorerCommand {
  const {rscript, modelDir, rScorer, endpoint} = input
  if (rScorer === 'mlflow') {
    // mlflow's own launcher interpolates the path into the R code (and breaks on quotes); this reads it
    // from the environment instead. The call is otherwise the one `mlflow models serve` runs.
    const code = `mlflow::mlflow_rfunc_serve(Sys.getenv('${R_MODEL_DIR_VARIABLE}'), port = ${Number(endpoint)}, host = '127.0.0.1')`
    return {file: rscript, args: ['-e', code], env: {[R_MODEL_DIR_VARIABLE]: modelDir}, server: 'mlflow_rfunc_serve'}
  }

  return {file: rscript, args: [templatePath('r', 'scorer.R'), modelDir, String(endpoint)], env: {}, server: 'R httpuv'}
}

/** Parses the output of the package check: the line `missing: a b`. */
export function parseMissingPackages(stdout: string): string[] {
  const line = stdout.split('\n').find((l) => l.startsWith('missing:'))
  if (line === undefined) throw new TypeError(`unexpected output of the R package check: ${stdout.trim()}`)
  return line.slice('missing:'.length).trim().split(/\s+/).filter(Boolean)
}

export async function crateBackend(input: CrateBackendInput): Promise<Backend> {
  const {env, rScorer} = input
  const modelDir = path.resolve(input.modelDir)
  const rscript = which('Rscript', env.PATH)
  if (!rscript) {
    throw new MlserveError('R_NOT_FOUND', 'This is an R crate model, and Rscript was not found on PATH.', {
      suggestions: [`Install R with its httpuv and jsonlite packages (Debian/Ubuntu: \`${APT_INSTALL}\`).`],
    })
  }

  await checkRPackages(rscript, env, rScorer)
  if (rScorer === 'mlflow' && !env.MLFLOW_BIN && !which('mlflow', env.PATH)) {
    // mlflow_rfunc_serve "downloads" even a local model with the Python mlflow CLI.
    throw new MlserveError('MLFLOW_NOT_FOUND', 'mlflow_rfunc_serve needs the Python mlflow CLI, and none was found.', {
      suggestions: ['Put `mlflow` on PATH or set MLFLOW_BIN to it, or serve with --r-scorer mlserve (no Python needed).'],
    })
  }

  // mlflow's R server has no /version. The Python scorer answers it with the mlflow version of the model's
  // environment; a crate model has no such environment, so this answers with the mlflow version that saved
  // the model (MLmodel mlflow_version; the R package does not always write it), else mlserve's own version.
  const version = input.mlflowVersion ?? input.mlmodel.mlflowVersion ?? (await mlserveVersion())
  const versionResponse: PlainResponse = {status: 200, contentType: 'application/json', body: version}

  return {
    kind: 'crate',
    server: rScorer === 'mlflow' ? 'mlflow_rfunc_serve' : 'R httpuv',
    readyPath: '/ping',
    // httpuv runs one request at a time: the rest wait in the proxy's queue, where timeouts and balancing see them.
    maxConcurrency: 1,
    rewrites: {'/health': '/ping'},
    ownRoutes: {'/version': versionResponse},
    async launch(slot: SlotInfo) {
      if (rScorer === 'mlflow') {
        const port = await slot.freePort()
        return {command: crateScorerCommand({rscript, modelDir, rScorer, endpoint: port}), endpoint: {kind: 'tcp', port}}
      }

      const endpoint = `unix:${slot.socketPath}`
      return {
        command: crateScorerCommand({rscript, modelDir, rScorer, endpoint}),
        endpoint: {kind: 'unix', socketPath: slot.socketPath},
      }
    },
  }
}

/** One quick Rscript run: which of the scorer's packages can R not load? */
async function checkRPackages(rscript: string, env: EnvVars, rScorer: RScorer): Promise<void> {
  const wanted = requiredRPackages(rScorer)
  const code = [
    `wanted <- c(${wanted.map((name) => `'${name}'`).join(', ')})`,
    'found <- vapply(wanted, requireNamespace, logical(1), quietly = TRUE)',
    "cat('missing:', wanted[!found], '\\n')",
  ].join('; ')
  const result = await run(rscript, ['-e', code], {env, timeoutMs: 60_000})

  let missing: string[]
  try {
    if (result.exitCode !== 0) throw new Error(tailLines(result.stderr || result.message))
    missing = parseMissingPackages(result.stdout)
  } catch (error) {
    throw new MlserveError('R_NOT_FOUND', `Could not run ${rscript}: ${messageOf(error)}`, {
      cause: error,
      suggestions: [`Check the R installation (Debian/Ubuntu: \`${APT_INSTALL}\`).`],
    })
  }

  if (missing.length === 0) return
  const debian = missing.filter((name) => name !== 'mlflow').map((name) => `r-cran-${name}`)
  const suggestions = debian.length > 0 ? [`Debian/Ubuntu: \`apt-get install -y --no-install-recommends ${debian.join(' ')}\`.`] : []
  if (missing.includes('mlflow')) {
    suggestions.push(
      'The R mlflow package is not packaged by Debian: install it from CRAN (`Rscript -e "install.packages(\'mlflow\')"`), ' +
        'or serve with --r-scorer mlserve, which needs only httpuv and jsonlite.',
    )
  } else {
    const names = missing.map((name) => `'${name}'`).join(', ')
    suggestions.push(`Or from CRAN: \`Rscript -e "install.packages(c(${names}))"\`.`)
  }

  throw new MlserveError('R_PACKAGE_MISSING', `R (${rscript}) lacks the package(s) the crate scorer needs: ${missing.join(', ')}.`, {
    suggestions,
  })
}

/** mlserve's version, from the package.json at the package root (src/scorer or dist/scorer, two levels up). */
async function mlserveVersion(): Promise<string> {
  const text = await readFile(new URL('../../package.json', import.meta.url), 'utf8')
  const {version} = JSON.parse(text) as {version?: unknown}
  return typeof version === 'string' ? version : 'unknown'
}
