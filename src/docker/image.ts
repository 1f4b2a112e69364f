// The orchestrator of build-docker and generate-dockerfile: the model and its environment as serve
// would prepare them, the environment's wheels, the build context, and (build-docker) the image build.
import {mkdtemp, readFile, readdir, rm, mkdir} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import type {ModelOptions} from '../config.js'
import {prepareEnv} from '../env/env.js'
import {ensureUv} from '../env/uv.js'
import {MlserveError, messageOf} from '../errors.js'
import {loadModel} from '../load-model.js'
import type {Logger} from '../log.js'
import {loadBoundedYaml} from '../util/yaml-bounded.js'
import {MLSERVE_ROOT, appFiles, mlserveVersion} from './app-files.js'
import {createBuildTrace, traceBuildMessage, type BuildTrace} from './build-log.js'
import {contextStream, writeContext, type Materialize} from './context.js'
import {PYTHON_MISMATCH_MARKER, type DockerfileSpec} from './dockerfile.js'
import {DockerEngine} from './engine.js'
import {ensureWheelhouse, freezeEnv} from './wheelhouse.js'

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
} as const

/** The platform images are built for: this machine's (the wheelhouse is). */
export function hostPlatform(): string {
  const arch = {x64: 'amd64', arm64: 'arm64'}[process.arch as string] ?? process.arch
  return `linux/${arch}`
}

function checkOptions(options: ImageOptions): void {
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

async function readModelLabels(mlmodelPath: string, modelDir: string): Promise<Record<string, string>> {
  const labels: Record<string, string> = {}
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

/** Everything the build context is made of, prepared on this machine. */
async function prepareContext(options: ImageOptions, io: ImageIo, dir: string, how: Materialize): Promise<{tag?: string; dockerfile: string}> {
  const {log, signal} = io
  const {ref, mlmodel, flavor} = await loadModel(options.modelUri, options.cwd, log, {env: options.env, signal, python: options.python})
  if (flavor === 'crate') {
    throw new MlserveError('BACKEND_UNSUPPORTED', 'R crate models cannot be put into an image by mlserve yet: they need R in the image.', {
      suggestions: ['Serve crate models with `mlserve serve` on a machine with R.'],
    })
  }

  const serverPackages = options.enableMlserver ? (await import('../scorer/mlserver.js')).MLSERVER_PACKAGES : undefined
  const env = await prepareEnv({options, modelDir: ref.localDir, mlmodel, log, signal, serverPackages})
  try {
    const pythonVersion = env.pythonVersion.split('.').slice(0, 2).join('.')
    const requirements = await freezeEnv(env.executable, options.env)
    const wheelhouse = await ensureWheelhouse({
      requirements,
      envPython: env.executable,
      pythonVersion,
      pipPython: options.python,
      env: options.env,
      log,
      signal,
    })
    const uv = await ensureUv(options.python, options.env, log, signal, options.buildTimeoutMs)
    if (!uv) {
      throw new MlserveError(
        'UV_NOT_FOUND',
        'The image installs its environment with uv, which was not found (MLSERVE_UV=none, or installing it failed).',
        {
          suggestions: ['Install uv (`pip install uv`) or set MLSERVE_UV to a uv executable.'],
        },
      )
    }

    const spec: DockerfileSpec = {
      baseImage: options.baseImage ?? `python:${pythonVersion}-slim`,
      pythonVersion,
      serveFlags: options.enableMlserver ? ['--enable-mlserver'] : [],
      labels: {
        [LABELS.modelUri]: options.modelUri,
        ...(await readModelLabels(mlmodel.path, ref.localDir)),
        [LABELS.mlflowVersion]: env.mlflowVersion,
        [LABELS.pythonVersion]: env.pythonVersion,
        [LABELS.mlserveVersion]: mlserveVersion(),
      },
    }
    const writing = log.phase('write build context')
    const dockerfile = await writeContext(
      dir,
      {
        dockerfile: spec,
        uv,
        wheelhouse,
        node: process.execPath,
        app: appFiles(MLSERVE_ROOT),
        init: path.join(MLSERVE_ROOT, 'templates', 'docker', 'init.py'),
        modelDir: ref.localDir,
      },
      how,
    )
    writing.done(`${requirements.length} Python packages, base image ${spec.baseImage}`)
    return {dockerfile}
  } finally {
    await env.release()
  }
}

/** generate-dockerfile: writes the context into `dir` (created; must be empty if it exists). */
export async function generateDockerfile(options: ImageOptions, dir: string, io: ImageIo): Promise<string> {
  checkOptions(options)
  const target = path.resolve(options.cwd, dir)
  try {
    await mkdir(target, {recursive: true})
    const existing = await readdir(target)
    if (existing.length > 0) {
      throw new MlserveError('DOCKER_CONTEXT_FAILED', `The output directory ${target} is not empty.`, {
        suggestions: ['Name a new or empty directory with -d: mlserve never overwrites files there.'],
      })
    }
  } catch (error) {
    if (error instanceof MlserveError) throw error
    throw new MlserveError('DOCKER_CONTEXT_FAILED', `Cannot write the build context to ${target}: ${messageOf(error)}`, {cause: error})
  }

  await prepareContext(options, io, target, 'copy')
  return target
}

export interface BuiltImage {
  readonly tag: string
  readonly imageId: string
  readonly trace: BuildTrace
}

/** build-docker: checks the daemon and base image first (seconds), then prepares and builds. */
export async function buildDockerImage(options: ImageOptions & {readonly tag: string}, io: ImageIo): Promise<BuiltImage> {
  checkOptions(options)
  const {log} = io
  const engine = await DockerEngine.connect(options.env)
  try {
    const daemon = await engine.version()
    log.info(`Docker daemon at ${engine.endpoint.display}: Docker ${daemon.version} (API ${daemon.apiVersion})`)
    if (options.baseImage) await requireBaseImage(engine, options.baseImage)
    const dir = await mkdtemp(path.join(tmpdir(), 'mlserve-context-'))
    try {
      const {dockerfile} = await prepareContext(options, io, dir, 'link')
      const baseImage = /^FROM (\S+) AS env$/m.exec(dockerfile)![1]!
      if (!options.baseImage) await requireBaseImage(engine, baseImage)
      return await runBuild(engine, dir, options.tag, io)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  } finally {
    await engine.close()
  }
}

async function requireBaseImage(engine: DockerEngine, image: string): Promise<void> {
  if (await engine.imageId(image)) return
  throw new MlserveError(
    'DOCKER_BASE_IMAGE_MISSING',
    `The base image ${image} is not in the Docker daemon at ${engine.endpoint.display}; mlserve builds offline and never pulls.`,
    {
      suggestions: [
        `Pull it where a registry is reachable (\`docker pull ${image}\`), or load a saved copy (\`docker save ${image}\` there, \`docker load\` here).`,
        "Or name another local image that has the model's Python with --base-image (any Debian/Ubuntu-based image with python3.X; `docker import` of a debootstrap rootfs with python3 works).",
      ],
    },
  )
}

async function runBuild(engine: DockerEngine, dir: string, tag: string, io: ImageIo): Promise<BuiltImage> {
  const {log} = io
  const phase = log.phase(`build image ${tag} (no network)`, {live: true})
  const trace = createBuildTrace()
  try {
    await engine.build(
      await contextStream(dir),
      {tag, networkMode: 'none'},
      (message) => {
        for (const line of traceBuildMessage(trace, message)) io.progress(line)
      },
      io.signal,
    )
  } catch (error) {
    if (!io.signal?.aborted) throw error
    throw new MlserveError('INTERRUPTED', `Interrupted while building ${tag}; the daemon cancels the build.`, {cause: error})
  }

  if (trace.error !== undefined) {
    const output = trace.output.join('\n')
    if (output.includes(PYTHON_MISMATCH_MARKER) || trace.error.includes(PYTHON_MISMATCH_MARKER)) {
      const line = trace.output.find((text) => text.includes(PYTHON_MISMATCH_MARKER)) ?? trace.error
      throw new MlserveError('DOCKER_BASE_PYTHON_MISMATCH', line.replace(`${PYTHON_MISMATCH_MARKER}: `, 'The base image does not fit: '), {
        suggestions: ["Use a base image with that Python (--base-image), e.g. python:X.Y-slim for the model's X.Y."],
      })
    }

    throw new MlserveError(
      'DOCKER_BUILD_FAILED',
      `The image build failed at ${trace.failedStep ?? 'its start'}: ${trace.error}${output ? `\n${output}` : ''}`,
    )
  }

  if (!trace.imageId) throw new MlserveError('DOCKER_BUILD_FAILED', 'The Docker daemon ended the build without naming an image.')
  phase.done(`${trace.imageId}${trace.cached.length > 0 ? `, ${trace.cached.length} of ${trace.steps.length} steps from the cache` : ''}`)
  return {tag, imageId: trace.imageId, trace}
}
