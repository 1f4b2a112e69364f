// What the registry patterns name now: each registered model whose name matches a pattern and whose
// alias, stage or latest version exists, served under its registered name (explicit names win).
import {isMlserveError, messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import {registeredModelNames, type SearchContext} from '../uri/registry-search.js'
import {lookUpModelTarget} from '../uri/resolve.js'
import {isModelName, type ModelSpec} from './model-specs.js'
import {matchesPattern, uriOfMatch, type ModelPattern} from './model-patterns.js'

export interface PatternContext extends SearchContext {
  readonly log: Logger
  readonly python?: string
}

export interface PatternMatches {
  /** The models the patterns serve now, in the registry's order, each pattern's settings on it. */
  readonly specs: ModelSpec[]
  /** Patterns that matched no model. */
  readonly unmatched: ModelPattern[]
  /** Names whose lookup failed for another reason than "no such alias/stage/version": state unknown, keep as is. */
  readonly unknown: ReadonlySet<string>
}

/** The registry's answers that mean "this model has no such alias, stage or version now". */
const ABSENT = new Set(['REGISTERED_MODEL_NOT_FOUND', 'MODEL_ALIAS_NOT_FOUND', 'MODEL_VERSION_NOT_FOUND'])
/** Lookups of candidates at once (each is one registry call). */
const LOOKUPS_AT_ONCE = 4

/**
 * Searches the registry once and looks up each candidate's alias (stage, latest). `taken` names are
 * served otherwise (-m NAME=..., --models): a pattern never replaces them. Throws when the search fails.
 */
export async function matchPatterns(
  patterns: readonly ModelPattern[],
  taken: ReadonlySet<string>,
  context: PatternContext,
): Promise<PatternMatches> {
  const names = await registeredModelNames(context)
  const candidates: Array<{name: string; pattern: ModelPattern}> = []
  const claimed = new Set(taken)
  const unmatched: ModelPattern[] = []
  const found = new Set<ModelPattern>()
  for (const pattern of patterns) {
    for (const name of names) {
      if (!matchesPattern(pattern, name) || claimed.has(name)) continue
      if (!isModelName(name)) {
        context.log.warn(
          `${pattern.pattern}: registered model ${JSON.stringify(name)} is not served (not a route name: letters, digits, ".", "_", "-")`,
        )
        continue
      }

      claimed.add(name)
      candidates.push({name, pattern})
    }
  }

  const specs: Array<ModelSpec | undefined> = Array.from({length: candidates.length})
  const unknown = new Set<string>()
  let next = 0
  const worker = async () => {
    while (next < candidates.length && !context.signal?.aborted) {
      const index = next++
      const {name, pattern} = candidates[index]!
      const uri = uriOfMatch(pattern, name)
      try {
        // eslint-disable-next-line no-await-in-loop
        await lookUpModelTarget(uri, {cwd: context.cwd, env: context.env, signal: context.signal, python: context.python})
        specs[index] = {name, uri, settings: pattern.settings}
        found.add(pattern)
      } catch (error) {
        if (isMlserveError(error) && ABSENT.has(error.code)) continue
        unknown.add(name)
        context.log.warn(`${pattern.pattern}: could not look up ${uri}: ${messageOf(error)}`)
      }
    }
  }

  await Promise.all(Array.from({length: Math.min(LOOKUPS_AT_ONCE, candidates.length)}, worker))
  for (const pattern of patterns) if (!found.has(pattern)) unmatched.push(pattern)
  return {specs: specs.filter((spec) => spec !== undefined), unmatched, unknown}
}
