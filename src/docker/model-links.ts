// The model's symbolic links, checked before its files go into an image (the build context follows links):
// each must resolve, stay inside the model directory, and not lead back to a folder that holds it.
import {readdir, readlink} from 'node:fs/promises'
import path from 'node:path'

import {MlserveError} from '../errors.js'
import {dirRoot, isInsideDir, resolveInside, type DirRoot} from '../util/fs.js'

const refuse = (root: DirRoot, link: string, target: string, why: string, suggestion: string): MlserveError =>
  new MlserveError(
    'DOCKER_MODEL_LINK_REFUSED',
    `The model directory ${root.dir} holds a symbolic link ${path.relative(root.dir, link)} -> ${target}, which ${why}.`,
    {suggestions: [suggestion, 'An image takes only the files of the model directory itself; links that stay inside it are fine.']},
  )

async function checkLink(root: DirRoot, link: string): Promise<void> {
  const target = await readlink(link).catch(() => '?')
  const {inside, real, error} = await resolveInside(root, link)
  if (error === 'ELOOP') {
    throw refuse(root, link, target, 'is a loop of links (ELOOP)', 'Remove the link, or point it at a file of the model.')
  }

  if (real === undefined) {
    throw refuse(root, link, target, `names nothing (${error})`, 'Remove the link, or point it at a file of the model.')
  }

  if (!inside && real !== root.real) {
    throw refuse(
      root,
      link,
      target,
      `leaves the model directory (it resolves to ${real})`,
      `Copy the file into the model in place of the link (\`rm '${link}' && cp -r '${real}' '${link}'\`), or remove the link.`,
    )
  }

  // A link to a folder that holds the link itself would be copied into itself forever.
  const realParent = path.join(root.real, path.relative(root.dir, path.dirname(link)))
  if (real === realParent || isInsideDir(real, realParent)) {
    throw refuse(root, link, target, 'leads back to a folder that holds it (a loop)', 'Remove the link, or point it at a file of the model.')
  }
}

/** Refuses (DOCKER_MODEL_LINK_REFUSED) a link of the model that loops, names nothing or leaves the model; returns how many links it checked. */
export async function checkModelLinks(modelDir: string): Promise<number> {
  const root = await dirRoot(path.resolve(modelDir))
  const walk = async (dir: string): Promise<number> => {
    const entries = await readdir(dir, {withFileTypes: true})
    const counts = await Promise.all(
      entries.map(async (entry) => {
        const file = path.join(dir, entry.name)
        if (entry.isDirectory()) return walk(file)
        if (!entry.isSymbolicLink()) return 0
        await checkLink(root, file)
        return 1
      }),
    )
    return counts.reduce((sum, count) => sum + count, 0)
  }

  return walk(root.dir)
}
