// What of mlserve itself goes into an image: its package files and the production dependency closure of
// its node_modules (never the dev tools), found by Node's own resolution rules, offline.
import {existsSync, readFileSync, realpathSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

/** The root of the installed mlserve package (the directory of its package.json). */
export const MLSERVE_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** A file or directory to put into the image: `from` on this machine, `to` relative to the app directory. */
export interface AppFile {
  readonly from: string
  readonly to: string
}

const PACKAGE_ENTRIES = ['package.json', 'oclif.manifest.json', 'bin', 'dist', 'templates']

interface PackageJson {
  readonly name?: string
  readonly version?: string
  readonly dependencies?: Readonly<Record<string, string>>
  readonly optionalDependencies?: Readonly<Record<string, string>>
}

function readPackage(dir: string): PackageJson {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson
}

/** mlserve's version, for the image's labels. */
export function mlserveVersion(root = MLSERVE_ROOT): string {
  return readPackage(root).version ?? '0.0.0'
}

/** Where `name` resolves from a package directory: its own node_modules, then each parent's. */
function resolvePackage(name: string, from: string, root: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name)
    if (existsSync(path.join(candidate, 'package.json'))) return candidate
    if (dir === root || path.dirname(dir) === dir) return undefined
  }
}

/**
 * The package's files and the node_modules directories its production dependencies need: every
 * `dependencies` / `optionalDependencies` entry, transitively, each package copied whole (with any
 * nested node_modules of its own). Missing optional packages are skipped.
 */
export function appFiles(root = MLSERVE_ROOT): AppFile[] {
  const files: AppFile[] = PACKAGE_ENTRIES.filter((entry) => existsSync(path.join(root, entry))).map((entry) => ({
    from: path.join(root, entry),
    to: entry,
  }))
  const seen = new Set<string>()
  const queue: string[] = [root]
  while (queue.length > 0) {
    const dir = queue.shift()!
    const manifest = readPackage(dir)
    const wanted = {...manifest.optionalDependencies, ...manifest.dependencies}
    for (const name of Object.keys(wanted)) {
      const found = resolvePackage(name, dir, root)
      if (!found) {
        if (manifest.optionalDependencies?.[name] !== undefined) continue
        throw new Error(`mlserve's dependency ${name} (of ${manifest.name ?? dir}) is not installed under ${root}: run npm ci`)
      }

      if (seen.has(found)) continue
      seen.add(found)
      queue.push(found)
    }
  }

  // Top-level copies only: a package inside another copied package's directory comes along with it.
  const dirs = [...seen].sort()
  const top = dirs.filter((dir) => !dirs.some((other) => other !== dir && dir.startsWith(other + path.sep)))
  for (const dir of top) files.push({from: realpathSync(dir), to: path.relative(root, dir)})
  return files
}
