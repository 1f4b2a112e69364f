// Writes a model image's build context: the Dockerfile and everything it copies, as symlinks (for
// build-docker, whose tar stream follows them) or as real copies (generate-dockerfile's output).
import {cp, mkdir, readdir, symlink, writeFile} from 'node:fs/promises'
import path from 'node:path'
import type {Readable} from 'node:stream'

import type {AppFile} from './app-files.js'
import {CONTEXT_PATHS} from './dockerfile.js'

export interface ContextSources {
  /** The model's environment as serve built it (a relocatable venv). */
  readonly envDir: string
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

/** What of a venv goes into the image: not its interpreter links and pyvenv.cfg (made in the image), nor mlserve's cache files. */
export const envEntryWanted = (name: string): boolean =>
  !name.startsWith('.') && name !== 'pyvenv.cfg' && name !== 'CACHEDIR.TAG' && name !== 'lib64'
const binEntryWanted = (name: string): boolean =>
  !/^python(\d+(\.\d+)?)?$/.test(name) && !name.startsWith('activate') && !name.startsWith('deactivate')

async function placeEnv(envDir: string, target: string, how: Materialize): Promise<void> {
  const entries = (await readdir(envDir)).filter((name) => envEntryWanted(name))
  await Promise.all(
    entries.map(async (name) => {
      if (name !== 'bin') return place(path.join(envDir, name), path.join(target, name), how)
      const scripts = (await readdir(path.join(envDir, 'bin'))).filter((script) => binEntryWanted(script))
      await mkdir(path.join(target, 'bin'), {recursive: true})
      await Promise.all(scripts.map((script) => place(path.join(envDir, 'bin', script), path.join(target, 'bin', script), how)))
    }),
  )
}

/** Which files a context holds: all (one Dockerfile), or those of build-docker's environment or model image. */
export type ContextPart = 'whole' | 'environment' | 'model'

/** Fills `dir` (which must exist and be empty) with a build context: the given Dockerfile and the part's files. */
export async function writeContext(
  dir: string,
  dockerfile: string,
  sources: ContextSources,
  how: Materialize,
  part: ContextPart = 'whole',
): Promise<void> {
  await writeFile(path.join(dir, 'Dockerfile'), dockerfile)
  await writeFile(path.join(dir, '.dockerignore'), '# everything here is part of the image\n')
  if (part !== 'model') {
    await placeEnv(sources.envDir, path.join(dir, CONTEXT_PATHS.env), how)
    await place(sources.node, path.join(dir, CONTEXT_PATHS.node), how)
  }

  if (part !== 'environment') {
    await Promise.all(sources.app.map((file) => place(file.from, path.join(dir, CONTEXT_PATHS.app, file.to), how)))
    await place(sources.init, path.join(dir, CONTEXT_PATHS.init), how)
    await mkdir(path.join(dir, CONTEXT_PATHS.model), {recursive: true})
    const modelEntries = await readdir(sources.modelDir)
    await Promise.all(modelEntries.map((entry) => place(path.join(sources.modelDir, entry), path.join(dir, CONTEXT_PATHS.model, entry), how)))
  }
}

/** The context as a tar stream for POST /build: symlinks followed, owners dropped. */
export async function contextStream(dir: string): Promise<Readable> {
  const {create} = await import('tar')
  const entries = (await readdir(dir)).sort()
  return create({cwd: dir, follow: true, portable: true}, entries) as unknown as Readable
}
