// The orchestrator of build-docker and generate-dockerfile: the image prepared on this machine, then either
// written as one build context, or built through the Engine API as an environment image and a model image.
import {statSync} from 'node:fs'
import {mkdtemp, readdir, rm, mkdir} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {contentKey} from '../cache/build-once.js'
import {MlserveError, messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import {mlserveVersion} from './app-files.js'
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
import {checkImageReference} from './reference.js'
import {LABELS, checkOptions, prepareImage, type ImageIo, type ImageOptions, type Prepared} from './prepare.js'

export type {ImageIo, ImageOptions} from './prepare.js'

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

/** The environment image's labels: the environment's cache key (never the host's path to it) and mlserve's version. */
export const environmentLabels = (prepared: Pick<Prepared, 'envKey'>): Record<string, string> => ({
  [LABELS.environment]: prepared.envKey,
  [LABELS.mlserveVersion]: mlserveVersion(),
})

/**
 * build-docker: checks the daemon first (milliseconds), prepares the model and its environment, checks
 * the base image and its Python, then builds the environment image unless the daemon has it, and the
 * model image on it (a context of mlserve and the model only).
 */
export async function buildDockerImage(options: ImageOptions & {readonly tag: string}, io: ImageIo): Promise<BuiltImage> {
  checkOptions(options)
  checkImageReference(options.tag, '-n/--name')
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
        const dockerfile = renderEnvironmentDockerfile(prepared.spec, environmentLabels(prepared))
        await buildContext(engine, environmentImage, io, dockerfile, prepared.sources, 'environment')
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
