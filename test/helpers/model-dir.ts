// Model directories for fault injection: files, named pipes nobody writes to, symlinks; a YAML alias bomb.
import {execFileSync} from 'node:child_process'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import type {Test} from 'tap'

import type {Logger} from '../../src/log.js'

const made = new Map<Test, number>()

/** A fresh model directory with the given files; `fifos` become named pipes nobody writes to, `links` symlinks. */
export function model(t: Test, files: Record<string, string>, extra: {fifos?: string[]; links?: Record<string, string>} = {}): string {
  const count = made.get(t) ?? 0
  made.set(t, count + 1)
  const dir = path.join(count === 0 ? t.testdir({}) : t.testdirName, `model-${count}`)
  mkdirSync(dir, {recursive: true})
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text)
  for (const fifo of extra.fifos ?? []) execFileSync('mkfifo', [path.join(dir, fifo)])
  for (const [name, target] of Object.entries(extra.links ?? {})) symlinkSync(target, path.join(dir, name))
  return dir
}

/** A logger that keeps its lines. */
export function captureLog(): Logger & {lines: string[]} {
  const lines: string[] = []
  return {
    lines,
    info: (message) => lines.push(`info ${message}`),
    warn: (message) => lines.push(`warn ${message}`),
    phase: () => ({done: () => 0}),
  }
}

export const MLMODEL = 'flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n'
/** An alias bomb: 9 levels of 9 aliases of the level below, 9^9 (387 million) strings once expanded. */
export const BOMB = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
for (const [index, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
  const below = String.fromCharCode('a'.charCodeAt(0) + index)
  BOMB.push(`${name}: &${name} [${Array.from({length: 9}, () => `*${below}`).join(', ')}]`)
}
