// The orchestrator of build-docker and generate-dockerfile: the model and its environment as serve
// would prepare them, the environment's wheels, the build context, and (build-docker) the image build.
import {mkdtemp, readFile, readdir, rm, mkdir, writeFile} from 'node:fs/promises'
import {statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import type {ModelOptions} from '../config.js'
import {prepareEnv} from '../env/env.js'
import {MlserveError, messageOf} from '../errors.js'
import {loadModel} from '../load-model.js'
import {contentKey} from '../cache/build-once.js'
import type {Logger} from '../log.js'
import {describeFailure, run, tailLines} from '../util/exec.js'
import {pathExists} from '../util/fs.js'
import {loadBoundedYaml} from '../util/yaml-bounded.js'
import {MLSERVE_ROOT, appFiles, mlserveVersion} from './app-files.js'
import {createBuildTrace, traceBuildMessage, type BuildTrace} from './build-log.js'
import {contextStream, writeContext, type ContextPart, type ContextSources} from './context.js'
import {
  PYTHON_MISMATCH_MARKER,
  abiCheck,
  renderDockerfile,
  renderEnvironmentDockerfile,
  renderModelDockerfile,
  type DockerfileSpec,
} from './dockerfile.js'
import {DockerEngine} from './engine.js'

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
interface Prepared {
  readonly spec: DockerfileSpec
  readonly sources: ContextSources
  /** The env's cache key (its directory name): part of the environment image's tag. */
  readonly envKey: string
  /** The context links to the env: it stays marked in use (safe from env prune) until this is called. */
  readonly release: () => Promise<void>
}

async function prepareImage(options: ImageOptions, io: ImageIo): Promise<Prepared> {
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
    if (!env.home) throw new MlserveError('INVALID_ARGUMENT', "The model has no environment of mlserve's own to put into an image.")
    const soabi = await soabiOf(env.executable, options.env)
    await compileEnv(env.executable, env.home, options, log, signal)
    const spec: DockerfileSpec = {
      baseImage: options.baseImage ?? `python:${pythonVersion}-slim`,
      pythonVersion,
      soabi,
      serveFlags: options.enableMlserver ? ['--enable-mlserver'] : [],
      labels: {
        [LABELS.modelUri]: options.modelUri,
        ...(await readModelLabels(mlmodel.path, ref.localDir)),
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

  const prepared = await prepareImage(options, io)
  try {
    const writing = io.log.phase('write build context')
    await writeContext(target, renderDockerfile(prepared.spec), prepared.sources, 'copy')
    writing.done(`${target}: environment ${prepared.sources.envDir} (${prepared.spec.soabi}), base image ${prepared.spec.baseImage}`)
  } finally {
    await prepared.release()
  }

  return target
}

export interface BuiltImage {
  readonly tag: string
  readonly imageId: string
  /** The environment image the model image is built on (found in the daemon, or built now). */
  readonly environmentImage: string
  readonly trace: BuildTrace
}

/** The environment image's tag: a digest of everything in it (base image, env, Node, the Dockerfile's part). */
function environmentTag(prepared: Prepared, baseImageId: string): string {
  const key = contentKey({
    v: 1,
    base: baseImageId,
    env: prepared.envKey,
    node:
      prepared.sources.node === process.execPath
        ? [process.version, process.execPath]
        : [prepared.sources.node, statSync(prepared.sources.node).mtimeMs],
    dockerfile: renderEnvironmentDockerfile(prepared.spec, {}),
  })
  return `mlserve-env:${key}`
}

/**
 * build-docker: checks the daemon first (milliseconds), prepares the model and its environment, checks
 * the base image and its Python, then builds the environment image unless the daemon has it, and the
 * model image on it (a context of mlserve and the model only).
 */
export async function buildDockerImage(options: ImageOptions & {readonly tag: string}, io: ImageIo): Promise<BuiltImage> {
  checkOptions(options)
  const {log} = io
  const engine = await DockerEngine.connect(options.env)
  try {
    const daemon = await engine.version()
    log.info(`Docker daemon at ${engine.endpoint.display}: Docker ${daemon.version} (API ${daemon.apiVersion})`)
    if (options.baseImage) await requireBaseImage(engine, options.baseImage)
    const prepared = await prepareImage(options, io)
    try {
      const baseImageId = await requireBaseImage(engine, prepared.spec.baseImage)
      const environmentImage = environmentTag(prepared, baseImageId)
      if (await engine.imageId(environmentImage)) {
        log.info(`environment image ${environmentImage} is in the daemon already: only mlserve and the model are sent`)
      } else {
        await requireBasePython(engine, prepared.spec, log)
        const labels = {[LABELS.environment]: prepared.sources.envDir, [LABELS.mlserveVersion]: mlserveVersion()}
        await buildContext(engine, environmentImage, io, renderEnvironmentDockerfile(prepared.spec, labels), prepared.sources, 'environment')
      }

      const built = await buildContext(
        engine,
        options.tag,
        io,
        renderModelDockerfile(prepared.spec, environmentImage),
        prepared.sources,
        'model',
      )
      return {...built, environmentImage}
    } finally {
      await prepared.release()
    }
  } finally {
    await engine.close()
  }
}

async function buildContext(
  engine: DockerEngine,
  tag: string,
  io: ImageIo,
  dockerfile: string,
  sources: ContextSources,
  part: ContextPart,
): Promise<{tag: string; imageId: string; trace: BuildTrace}> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mlserve-context-'))
  try {
    await writeContext(dir, dockerfile, sources, 'link', part)
    return await runBuild(engine, dir, tag, io, part === 'environment' ? 'environment image' : 'image')
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
}

async function requireBaseImage(engine: DockerEngine, image: string): Promise<string> {
  const id = await engine.imageId(image)
  if (id) return id
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

/** Before the context is sent (hundreds of MB): does the base image run the environment's Python? */
async function requireBasePython(engine: DockerEngine, spec: DockerfileSpec, log: Logger): Promise<void> {
  const phase = log.phase(`check python${spec.pythonVersion} in ${spec.baseImage}`)
  const python = `python${spec.pythonVersion}`
  const probe = await engine.probe(spec.baseImage, ['/bin/sh', '-c', `exec ${python} -c "$0"`, abiCheck(spec.soabi)])
  if (probe.exitCode === 0) {
    phase.done(probe.output)
    return
  }

  const has = probe.exitCode === 127 || /not found/.test(probe.output) ? `no ${python}` : probe.output.split('\n').at(-1)
  throw new MlserveError(
    'DOCKER_BASE_PYTHON_MISMATCH',
    `The base image does not fit: the model's environment needs ${python} (${spec.soabi}); ${spec.baseImage} has: ${has}`,
    {suggestions: [`Use a base image with Python ${spec.pythonVersion} (--base-image), e.g. python:${spec.pythonVersion}-slim.`]},
  )
}

async function runBuild(
  engine: DockerEngine,
  dir: string,
  tag: string,
  io: ImageIo,
  what: string,
): Promise<{tag: string; imageId: string; trace: BuildTrace}> {
  const {log} = io
  const phase = log.phase(`build ${what} ${tag} (no network)`, {live: true})
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
