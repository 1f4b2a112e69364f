// The conda manager: conda env create from the model's conda.yaml, recorded in mlserve's cache, and the
// scorer started with the env's own python (not `conda run`).
import path from 'node:path'

import type {EnvVars} from '../config.js'
import {ensureBuilt} from '../cache/build-once.js'
import {lockTimeoutMs} from '../cache/lock.js'
import {MlserveError, isMlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import type {Mlmodel} from '../model/mlmodel.js'
import {describeFailure, run, tailLines} from '../util/exec.js'
import {MODEL_TEXT_MAX_BYTES, readBoundedText} from '../util/read-bounded.js'
import {which} from '../util/which.js'
import {ENV_KIND, contentKey, envRoot} from './cache.js'
import {installerRunFor, runInstaller, type InstallerRun} from './installer.js'
import {waitingMessage} from './managed.js'
import {serverKeyPart} from './server-packages.js'
import {envFiles} from './spec.js'

export interface CondaTools {
  readonly conda: string
  /** The executable that runs `env create` (MLFLOW_CONDA_CREATE_ENV_CMD, e.g. mamba). */
  readonly creator: string
}

/** Where mlflow looks for an executable: $MLFLOW_CONDA_HOME/bin, else beside $CONDA_EXE, else PATH. */
export function condaExecutable(name: string, env: EnvVars): string {
  if (env.MLFLOW_CONDA_HOME) return path.join(env.MLFLOW_CONDA_HOME, 'bin', name)
  if (env.CONDA_EXE) return path.join(path.dirname(env.CONDA_EXE), name)
  return which(name, env.PATH) ?? name
}

export async function findConda(env: EnvVars): Promise<CondaTools> {
  const tools = {conda: condaExecutable('conda', env), creator: condaExecutable(env.MLFLOW_CONDA_CREATE_ENV_CMD ?? 'conda', env)}
  for (const [file, variable] of [
    [tools.conda, 'MLFLOW_CONDA_HOME'],
    [tools.creator, 'MLFLOW_CONDA_CREATE_ENV_CMD'],
  ] as const) {
    // eslint-disable-next-line no-await-in-loop
    const result = await run(file, ['--version'], {env, timeoutMs: 60_000})
    if (result.exitCode !== 0) {
      throw new MlserveError(
        'CONDA_NOT_FOUND',
        `Could not find Conda executable at ${file}. Ensure Conda is installed as per the instructions at https://conda.io/projects/conda/en/latest/user-guide/install/index.html.`,
        {
          suggestions: [
            `Point ${variable === 'MLFLOW_CONDA_HOME' ? 'MLFLOW_CONDA_HOME at the conda installation' : 'MLFLOW_CONDA_CREATE_ENV_CMD at the executable (conda or mamba)'}, or use --env-manager virtualenv.`,
          ],
        },
      )
    }
  }

  return tools
}

/** The prefixes `conda env list --json` reports. */
async function condaPrefixes(tools: CondaTools, env: EnvVars): Promise<string[]> {
  const result = await run(tools.conda, ['env', 'list', '--json'], {env})
  if (result.exitCode !== 0) {
    throw new MlserveError(
      'ENV_BUILD_FAILED',
      `\`conda env list --json\` failed (${describeFailure(tools.conda, result)}): ${tailLines(result.stderr)}`,
    )
  }

  return (JSON.parse(result.stdout) as {envs?: string[]}).envs ?? []
}

const prefixNamed = (prefixes: readonly string[], name: string) => prefixes.find((prefix) => path.basename(prefix) === name)

export interface CondaEnvRequest {
  readonly modelDir: string
  readonly mlmodel: Mlmodel
  /** e.g. "mlflow==3.17.2" with --install-mlflow. */
  readonly mlflow?: string
  /** Requirement specs of the server that runs the model (e.g. mlserver), pip-installed after the env is created. */
  readonly serverPackages?: readonly string[]
  readonly env: EnvVars
  readonly log: Logger
  readonly signal?: AbortSignal
  /** How long a build may take (0: no limit). */
  readonly buildTimeoutMs?: number
  readonly verify: (python: string, run: InstallerRun) => Promise<void>
  readonly versionOf: (python: string) => Promise<string | undefined>
}

export async function ensureCondaEnv(request: CondaEnvRequest): Promise<{python: string; dir: string; built: boolean}> {
  const {log, env} = request
  if (!/^(true|1)$/i.test(env.MLFLOW_DISABLE_ENV_MANAGER_CONDA_WARNING ?? '')) {
    log.warn(
      "Use of conda is discouraged. If you use it, please ensure that your use of conda complies with Anaconda's terms of service. To suppress this warning, set the MLFLOW_DISABLE_ENV_MANAGER_CONDA_WARNING environment variable to 'TRUE'.",
    )
  }

  const tools = await findConda(env)
  const condaFile = path.join(request.modelDir, envFiles(request.mlmodel.pyfunc?.env).conda)
  // A FIFO, a device or a huge file is refused (ENV_SPEC_INVALID) instead of read; a missing file is conda's to report.
  const condaYaml = await readBoundedText(condaFile, {maxBytes: MODEL_TEXT_MAX_BYTES, code: 'ENV_SPEC_INVALID'}).catch((error: unknown) => {
    if (isMlserveError(error)) throw error
    return undefined
  })
  const serverPackages = request.serverPackages ?? []
  const key = contentKey({
    v: 1,
    manager: 'conda',
    condaYaml: condaYaml ?? null,
    mlflow: request.mlflow ?? null,
    ...serverKeyPart(serverPackages),
    platform: `${process.platform}-${process.arch}`,
  })
  const name = `mlserve-${key}`
  const root = envRoot(env)
  // A record whose env was removed behind mlserve's back (or lost its mlflow) is damaged: built again.
  const cached = await ensureBuilt({
    kind: ENV_KIND,
    root,
    key,
    signal: request.signal,
    lockTimeoutMs: lockTimeoutMs(env),
    buildTimeoutMs: request.buildTimeoutMs,
    record: {
      manager: 'conda',
      python: 'conda',
      mlflow: request.mlflow ?? null,
      ...(serverPackages.length > 0 ? {serverPackages} : {}),
      model: request.modelDir,
    },
    onTakeOver: (message) => log.warn(message),
    onWait: (wait) => log.info(waitingMessage(wait)),
    onDamaged: (reason) => log.warn(`the conda environment ${name} recorded in the cache is damaged: ${reason}; building it again`),
    build: (_dir, {signal}) =>
      buildCondaEnv({...request, signal, tools, name, condaFile: condaYaml === undefined ? undefined : condaFile, root, key}),
  })
  const prefix = cached.record.prefix
  if (!prefix) throw new MlserveError('ENV_BUILD_FAILED', `The cache record of the conda environment ${name} does not say where it is.`)
  return {python: path.join(prefix, 'bin', 'python'), dir: cached.dir, built: cached.built}
}

/** Creates the conda env (removing an unrecorded leftover of the same name first); returns where it lives. */
async function buildCondaEnv(
  request: CondaEnvRequest & {tools: CondaTools; name: string; condaFile?: string; root: string; key: string},
): Promise<{prefix: string; python: string}> {
  const {tools, name, log, env} = request
  const run = await installerRunFor(request.root, request.key, env, request.signal)
  const remove = () =>
    runInstaller(`Removing the conda environment ${name}`, [tools.conda, 'remove', '--yes', '--name', name, '--all'], {
      ...run,
      signal: undefined,
    })

  // A prefix without mlserve's record is a build that was interrupted: never reuse it.
  if (prefixNamed(await condaPrefixes(tools, env), name)) await remove()
  try {
    const creating = log.phase(`creating conda environment ${name}`, {live: true})
    await runInstaller(
      'Creating the conda environment',
      request.condaFile
        ? [tools.creator, 'env', 'create', '-n', name, '--file', request.condaFile]
        : [tools.creator, 'create', '--channel', 'conda-forge', '--yes', '--override-channels', '-n', name, 'python'],
      run,
    )
    creating.done()
    const prefix = prefixNamed(await condaPrefixes(tools, env), name)
    if (!prefix) throw new MlserveError('ENV_BUILD_FAILED', `conda created ${name} but \`conda env list\` does not list it.`)
    const python = path.join(prefix, 'bin', 'python')
    const extra = [...(request.mlflow ? [request.mlflow] : []), ...(request.serverPackages ?? [])]
    if (extra.length > 0) {
      const phase = log.phase(`installing ${extra.join(', ')}`, {live: true})
      await runInstaller(`Installing ${extra.join(', ')}`, [python, '-m', 'pip', 'install', ...extra], run)
      phase.done()
    }

    await request.verify(python, run)
    const version = await request.versionOf(python)
    return {prefix, python: version ?? 'unknown'}
  } catch (error) {
    await remove().catch(() => {})
    throw error
  }
}
