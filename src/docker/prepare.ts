// What an image is made of, prepared on this machine as serve would: the model, its environment (built or
// found, bytecode compiled once), the Dockerfile's facts and labels, and the files the context copies.
import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {ModelOptions} from '../config.js'
import {prepareEnv} from '../env/env.js'
import {MlserveError} from '../errors.js'
import {loadModel} from '../load-model.js'
import type {Logger} from '../log.js'
import {publicModelUri} from '../uri/public.js'
import {describeFailure, run, tailLines} from '../util/exec.js'
import {pathExists} from '../util/fs.js'
import {loadBoundedYaml} from '../util/yaml-bounded.js'
import {MLSERVE_ROOT, appFiles, mlserveVersion} from './app-files.js'
import type {ContextSources} from './context.js'
import type {DockerfileSpec} from './dockerfile.js'
import {checkModelLinks} from './model-links.js'
import {checkImageReference} from './reference.js'

export interface ImageOptions extends ModelOptions {
  readonly enableMlserver: boolean
  /** Default: python:<X.Y>-slim, X.Y being the model environment's Python. */
  readonly baseImage?: string
  /** Only the platform of this machine (the wheels are collected for it). */
  readonly platform?: string
}

export interface ImageIo {
  readonly log: Logger
  /** Where the build's own output goes (step lines and what RUN prints). */
  readonly progress: (line: string) => void
  readonly signal?: AbortSignal
}

/** The label keys an mlserve image carries. */
export const LABELS = {
  modelUri: 'org.mlserve.model.uri',
  runId: 'org.mlserve.model.run-id',
  modelUuid: 'org.mlserve.model.uuid',
  registeredName: 'org.mlserve.model.registered-name',
  registeredVersion: 'org.mlserve.model.registered-version',
  mlflowVersion: 'org.mlserve.mlflow.version',
  pythonVersion: 'org.mlserve.python.version',
  mlserveVersion: 'org.mlserve.version',
  environment: 'org.mlserve.environment',
} as const

/** The platform images are built for: this machine's (whose environment goes into the image). */
export function hostPlatform(): string {
  const arch = {x64: 'amd64', arm64: 'arm64'}[process.arch as string] ?? process.arch
  return `linux/${arch}`
}

export function checkOptions(options: ImageOptions): void {
  if (options.baseImage !== undefined) checkImageReference(options.baseImage, '--base-image')
  if (options.envManager === 'local' || options.envManager === 'conda') {
    throw new MlserveError('INVALID_ARGUMENT', `--env-manager ${options.envManager} cannot build an image environment offline.`, {
      suggestions: [
        "Use --env-manager virtualenv (the default) or uv: mlserve builds the model's environment from its python_env.yaml / requirements.txt and installs the same packages into the image from wheels.",
      ],
    })
  }

  if (options.platform && options.platform !== hostPlatform()) {
    throw new MlserveError(
      'INVALID_ARGUMENT',
      `--platform ${options.platform}: mlserve builds images for this machine's platform only (${hostPlatform()}).`,
      {
        suggestions: ['The image installs wheels collected on this machine: build on a machine of the target platform.'],
      },
    )
  }
}

/**
 * The labels that say which model an image holds: its URI (credentials hidden; a local model by its
 * directory's name, never the host's path), its run, uuid and registry version.
 */
export async function modelLabels(modelUri: string, mlmodelPath: string, modelDir: string): Promise<Record<string, string>> {
  const labels: Record<string, string> = {[LABELS.modelUri]: publicModelUri(modelUri, modelDir)}
  try {
    const doc = loadBoundedYaml(await readFile(mlmodelPath, 'utf8')) as Record<string, unknown>
    if (typeof doc.run_id === 'string') labels[LABELS.runId] = doc.run_id
    if (typeof doc.model_uuid === 'string') labels[LABELS.modelUuid] = doc.model_uuid
  } catch {
    // readMlmodel has read it already; labels are best effort
  }

  try {
    const meta = loadBoundedYaml(await readFile(path.join(modelDir, 'registered_model_meta'), 'utf8')) as Record<string, unknown>
    if (meta.model_name !== undefined) labels[LABELS.registeredName] = String(meta.model_name)
    if (meta.model_version !== undefined) labels[LABELS.registeredVersion] = String(meta.model_version)
  } catch {
    // not a registry download
  }

  return labels
}

/** The interpreter's ABI tag (sysconfig SOABI): the base image's Python must have the same for the env's compiled modules. */
async function soabiOf(python: string, env: ModelOptions['env']): Promise<string> {
  const result = await run(python, ['-I', '-c', "import sysconfig; print(sysconfig.get_config_var('SOABI'))"], {env})
  if (result.exitCode !== 0 || !result.stdout.trim()) {
    throw new MlserveError(
      'DOCKER_CONTEXT_FAILED',
      `Cannot read the ABI of ${python} (${describeFailure(python, result)}): ${tailLines(result.stderr)}`,
    )
  }

  return result.stdout.trim()
}

const BYTECODE_MARKER = '.mlserve-bytecode'

/**
 * Writes the bytecode of every module of the env, once (a marker says it was done): in the image the
 * server runs as a user that cannot write __pycache__, so whatever is not compiled here would be compiled
 * again on every start (seconds for scikit-learn or pandas). The env is mlserve's cache entry, and the
 * same interpreter would write these files itself.
 */
async function compileEnv(python: string, home: string, options: ImageOptions, log: Logger, signal?: AbortSignal): Promise<void> {
  const marker = path.join(home, BYTECODE_MARKER)
  if (await pathExists(marker)) return
  const phase = log.phase("compile the environment's bytecode (once per environment)", {live: true})
  const result = await run(python, ['-m', 'compileall', '-q', '-j', '0', path.join(home, 'lib')], {env: options.env, signal, group: true})
  if (signal?.aborted) throw new MlserveError('INTERRUPTED', "Interrupted while compiling the environment's bytecode.")
  // compileall exits 1 when a file does not compile (test data, Python 2 leftovers): those are never imported.
  if (result.exitCode !== 0)
    log.warn(`some files of ${home} did not compile (${tailLines(result.stdout || result.stderr, 1)}); they load from source`)
  await writeFile(marker, new Date().toISOString() + '\n')
  phase.done()
}

/** What an image is made of, prepared on this machine: the Dockerfile's facts and the files it copies. */
export interface Prepared {
  readonly spec: DockerfileSpec
  readonly sources: ContextSources
  /** The env's cache key (its directory name): part of the environment image's tag. */
  readonly envKey: string
  /** The context links to the env: it stays marked in use (safe from env prune) until this is called. */
  readonly release: () => Promise<void>
}

export async function prepareImage(options: ImageOptions, io: ImageIo): Promise<Prepared> {
  const {log, signal} = io
  const {ref, mlmodel, flavor} = await loadModel(options.modelUri, options.cwd, log, {env: options.env, signal, python: options.python})
  if (flavor === 'crate') {
    throw new MlserveError('BACKEND_UNSUPPORTED', 'R crate models cannot be put into an image by mlserve yet: they need R in the image.', {
      suggestions: ['Serve crate models with `mlserve serve` on a machine with R.'],
    })
  }

  // Before the environment (minutes): the build context follows links, so none may leave the model.
  await checkModelLinks(ref.localDir)
  const serverPackages = options.enableMlserver ? (await import('../scorer/mlserver.js')).MLSERVER_PACKAGES : undefined
  const env = await prepareEnv({options, modelDir: ref.localDir, mlmodel, log, signal, serverPackages})
  try {
    const pythonVersion = env.pythonVersion.split('.').slice(0, 2).join('.')
    if (!env.home) throw new MlserveError('INVALID_ARGUMENT', "The model has no environment of mlserve's own to put into an image.")
    const soabi = await soabiOf(env.executable, options.env)
    await compileEnv(env.executable, env.home, options, log, signal)
    const spec: DockerfileSpec = {
      baseImage: options.baseImage ?? `python:${pythonVersion}-slim`,
      pythonVersion,
      soabi,
      serveFlags: options.enableMlserver ? ['--enable-mlserver'] : [],
      labels: {
        ...(await modelLabels(options.modelUri, mlmodel.path, ref.localDir)),
        [LABELS.mlflowVersion]: env.mlflowVersion,
        [LABELS.pythonVersion]: env.pythonVersion,
        [LABELS.mlserveVersion]: mlserveVersion(),
      },
    }
    const sources: ContextSources = {
      envDir: env.home,
      node: options.env.MLSERVE_DOCKER_NODE ?? process.execPath,
      app: appFiles(MLSERVE_ROOT),
      init: path.join(MLSERVE_ROOT, 'templates', 'docker', 'init.py'),
      modelDir: ref.localDir,
    }
    return {spec, sources, envKey: path.basename(env.home), release: env.release}
  } catch (error) {
    await env.release()
    throw error
  }
}
