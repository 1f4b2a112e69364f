// What a local model directory holds now, as one digest of its files' paths, sizes and modification
// times (no file is read): SIGHUP reloads a local model only when this changed.
import {createHash} from 'node:crypto'
import {lstat, readdir} from 'node:fs/promises'
import path from 'node:path'

/** Past this many entries the directory is not walked further: its digest then says "changed" every time. */
const MAX_ENTRIES = 100_000

/** A digest of every file and link under `dir` (relative path, size, mtime; __pycache__ left out); a fresh value each call when it cannot tell. */
export async function fingerprintDir(dir: string): Promise<string> {
  const hash = createHash('sha256')
  let entries
  try {
    entries = await readdir(dir, {recursive: true, withFileTypes: true})
  } catch (error) {
    return `unreadable:${(error as NodeJS.ErrnoException).code ?? 'error'}:${process.hrtime.bigint()}`
  }

  if (entries.length > MAX_ENTRIES) return `too-many:${process.hrtime.bigint()}`
  // Bytecode the model's own code leaves behind when a scorer imports it is not the model changing.
  // Directories are left out too: their mtime moves when __pycache__ appears in them.
  const names = entries
    .filter((entry) => !entry.isDirectory())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter((file) => !file.split(path.sep).includes('__pycache__'))
    .sort()
  for (const file of names) {
    // eslint-disable-next-line no-await-in-loop
    const info = await lstat(file).catch(() => undefined)
    hash.update(`${path.relative(dir, file)}\0${info ? `${info.size}:${info.mtimeMs}:${info.mode}` : 'gone'}\n`)
  }

  return hash.digest('hex')
}
