// Registry patterns in -m and --models: `models:/*@champion`, `models:/fraud-*/Production`,
// `models:/*/latest`; `*` and `?` over registered-model names, checked (exit 2) before any work.
import {MlserveError} from '../errors.js'
import type {ModelSettings} from './model-settings.js'

export interface ModelPattern {
  /** As the user gave it. */
  readonly pattern: string
  /** The glob over registered-model names (`fraud-*`). */
  readonly glob: string
  /** What follows each name in its URI: `@champion`, `/Production` or `/latest`. */
  readonly suffix: string
  readonly settings: ModelSettings
}

const PREFIX = 'models:/'
const SHAPE = "A registry pattern is models:/<glob>@<alias>, models:/<glob>/<stage> or models:/<glob>/latest, e.g. -m 'models:/*@champion'."

/** Whether a model URI is a registry pattern: a models:/ name holding `*` or `?`. */
export function isModelPattern(uri: string): boolean {
  if (!uri.startsWith(PREFIX)) return false
  const name = /^[^/@]*/.exec(uri.slice(PREFIX.length))![0]
  return /[*?]/.test(name)
}

const usage = (message: string) => new MlserveError('INVALID_ARGUMENT', message, {suggestions: [SHAPE]})

/** Parses a registry pattern (a bad one is a usage error naming what is wrong). */
export function parseModelPattern(pattern: string, settings: ModelSettings = {}): ModelPattern {
  const rest = pattern.slice(PREFIX.length)
  const at = /[/@]/.exec(rest)
  const glob = at ? rest.slice(0, at.index) : rest
  const suffix = at ? rest.slice(at.index) : ''
  const bad = (why: string) => usage(`${pattern}: ${why}.`)
  if (/[[\]{}\\]/.test(glob)) throw bad('only * and ? are wildcards in a registry pattern (no [...], {...} or \\)')
  if (suffix === '') throw bad('a pattern names an alias, a stage or latest after the names (there is no single model to serve by name alone)')
  const tail = suffix.slice(1)
  if (tail.trim() === '' || tail.includes('/') || tail.includes('@')) throw bad('what follows the names is not one alias, stage or latest')
  if (/[*?]/.test(tail)) throw bad('wildcards go in the model name only, not in the alias or stage')
  if (suffix.startsWith('/') && /^\d+$/.test(tail))
    throw bad(`a pattern follows an alias, a stage or latest, not version ${tail} of every model`)
  return {pattern, glob, suffix: suffix.startsWith('/') && tail.toLowerCase() === 'latest' ? '/latest' : suffix, settings}
}

const globCache = new WeakMap<ModelPattern, RegExp>()

/** Whether a registered model's name matches the pattern (`*`: any run of characters, `?`: one; case-sensitive). */
export function matchesPattern(pattern: ModelPattern, name: string): boolean {
  let regex = globCache.get(pattern)
  if (!regex) {
    const source = [...pattern.glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[$()*+.?[\\\]^{|}]/g, '\\$&'))).join('')
    regex = new RegExp(`^${source}$`, 's')
    globCache.set(pattern, regex)
  }

  return regex.test(name)
}

/** The URI one matching model is served from: `models:/<name>@champion`. */
export const uriOfMatch = (pattern: ModelPattern, name: string): string => `${PREFIX}${name}${pattern.suffix}`
