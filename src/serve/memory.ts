// Memory accounting for --max-memory: sizes as the user writes them (16GiB, 512M), and the PSS of a
// process tree read from /proc/<pid>/smaps_rollup (shared pages split among the processes sharing them).
import {readFile} from 'node:fs/promises'

import {MlserveError} from '../errors.js'

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 2 ** 10,
  kib: 2 ** 10,
  mi: 2 ** 20,
  mib: 2 ** 20,
  gi: 2 ** 30,
  gib: 2 ** 30,
  ti: 2 ** 40,
  tib: 2 ** 40,
}

/** "16GiB", "512M", "1.5G", "1000000" as bytes; a usage error (exit 2) names the flag otherwise. */
export function parseSize(text: string, flag = '--max-memory'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined
  const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : Number.NaN
  if (!Number.isFinite(bytes) || bytes <= 0) {
    throw new MlserveError('INVALID_ARGUMENT', `${flag} ${text}: not a size.`, {
      suggestions: [`Give a positive size in bytes or with a unit (K, M, G, T, KiB, MiB, GiB, TiB), e.g. ${flag} 16GiB.`],
    })
  }

  return bytes
}

/** The Pss line of /proc/<pid>/smaps_rollup, in bytes (undefined when the text has none). */
export function pssOf(smapsRollup: string): number | undefined {
  const match = /^Pss:\s+(\d+)\s+kB$/m.exec(smapsRollup)
  return match ? Number(match[1]) * 1024 : undefined
}

/** The pids of `pid`'s children (Linux /proc; none when it is gone or the kernel does not list them). */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  return text
    .split(/\s+/)
    .filter((word) => word !== '')
    .map(Number)
}

/** `roots` and all their descendants, each once. */
export async function processTree(roots: readonly number[]): Promise<number[]> {
  const seen = new Set<number>()
  let level = roots.filter((pid) => Number.isInteger(pid) && pid > 0)
  while (level.length > 0) {
    const fresh = level.filter((pid) => !seen.has(pid))
    for (const pid of fresh) seen.add(pid)
    // eslint-disable-next-line no-await-in-loop
    level = (await Promise.all(fresh.map(async (pid) => childrenOf(pid)))).flat()
  }

  return [...seen]
}

/** The summed PSS, in bytes, of `roots`' process trees (processes gone meanwhile count 0). */
export async function treePss(roots: readonly number[]): Promise<number> {
  return processPss(await processTree(roots))
}

/** The summed PSS, in bytes, of these processes alone (gone ones count 0). */
export async function processPss(pids: readonly number[]): Promise<number> {
  const sizes = await Promise.all(pids.map(async (pid) => pssOf(await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '')) ?? 0))
  return sizes.reduce((sum, size) => sum + size, 0)
}
