// Writes a model image's build context: the Dockerfile and everything it copies, as symlinks (for
// build-docker, whose tar stream follows them) or as real copies (generate-dockerfile's output).
import {chmod, cp, mkdir, readdir, symlink, writeFile} from 'node:fs/promises'
import path from 'node:path'
import type {Readable} from 'node:stream'

import type {AppFile} from './app-files.js'
import {CONTEXT_PATHS, renderDockerfile, type DockerfileSpec} from './dockerfile.js'

export interface ContextSources {
  readonly dockerfile: DockerfileSpec
  /** The uv executable the environment stage installs with (never in the final image). */
  readonly uv: string
  readonly wheelhouse: {readonly requirementsFile: string; readonly wheelsDir: string}
  /** The node executable for the image. */
  readonly node: string
  readonly app: readonly AppFile[]
  readonly init: string
  readonly modelDir: string
}

export type Materialize = 'link' | 'copy'

async function place(from: string, to: string, how: Materialize): Promise<void> {
  await mkdir(path.dirname(to), {recursive: true})
  if (how === 'link') await symlink(from, to)
  else await cp(from, to, {recursive: true, dereference: true, preserveTimestamps: true})
}

/** Fills `dir` (which must exist and be empty) with the build context; returns the Dockerfile's text. */
export async function writeContext(dir: string, sources: ContextSources, how: Materialize): Promise<string> {
  const dockerfile = renderDockerfile(sources.dockerfile)
  await writeFile(path.join(dir, 'Dockerfile'), dockerfile)
  await writeFile(path.join(dir, '.dockerignore'), '# everything here is part of the image\n')
  await place(sources.uv, path.join(dir, CONTEXT_PATHS.uv), how)
  await place(sources.wheelhouse.requirementsFile, path.join(dir, CONTEXT_PATHS.requirements), how)
  await place(sources.wheelhouse.wheelsDir, path.join(dir, CONTEXT_PATHS.wheels), how)
  await place(sources.node, path.join(dir, CONTEXT_PATHS.node), how)
  await Promise.all(sources.app.map((file) => place(file.from, path.join(dir, CONTEXT_PATHS.app, file.to), how)))
  await place(sources.init, path.join(dir, CONTEXT_PATHS.init), how)
  await mkdir(path.join(dir, CONTEXT_PATHS.model), {recursive: true})
  const modelEntries = await readdir(sources.modelDir)
  await Promise.all(modelEntries.map((entry) => place(path.join(sources.modelDir, entry), path.join(dir, CONTEXT_PATHS.model, entry), how)))

  if (how === 'copy') {
    await chmod(path.join(dir, CONTEXT_PATHS.uv), 0o755)
    await chmod(path.join(dir, CONTEXT_PATHS.node), 0o755)
  }

  return dockerfile
}

/** The context as a tar stream for POST /build: symlinks followed, owners dropped, sorted for stable layers. */
export async function contextStream(dir: string): Promise<Readable> {
  const {create} = await import('tar')
  const entries = (await readdir(dir)).sort()
  return create({cwd: dir, follow: true, portable: true, noDirRecurse: false}, entries) as unknown as Readable
}
