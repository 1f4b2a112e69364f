// YAML from a model, bounded: a document whose aliases expand it beyond a budget is refused before anything walks it.
import {load} from 'js-yaml'

/**
 * How much a loaded document may weigh once its aliases are expanded: one per value plus the length of
 * each string. js-yaml shares an aliased value instead of copying it, so an "alias bomb" loads at once,
 * and only what walks it (a message printing it, JSON.stringify) would expand it: 2^30 values, or more.
 */
export const YAML_MAX_WEIGHT = 32 * 1024 * 1024

/** Whether `value`, with every alias expanded, weighs at most `budget` (stops as soon as it does not). */
export function fitsWeight(value: unknown, budget: number): boolean {
  let left = budget
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const item = stack.pop()
    left -= typeof item === 'string' ? 1 + item.length : 1
    if (left < 0) return false
    if (Array.isArray(item)) {
      for (const child of item) stack.push(child)
    } else if (typeof item === 'object' && item !== null && !(item instanceof Date)) {
      for (const [key, child] of Object.entries(item)) {
        left -= key.length
        stack.push(child)
      }
    }
  }

  return true
}

/** js-yaml's load, refusing documents heavier than `maxWeight` once expanded (the error says so; the caller names the file). */
export function loadBoundedYaml(text: string, maxWeight = YAML_MAX_WEIGHT): unknown {
  const doc = load(text)
  if (!fitsWeight(doc, maxWeight)) {
    throw new Error(
      `the document expands to more than ${maxWeight} values and characters (aliases that repeat each other: a YAML "alias bomb"?), far more than any model file holds`,
    )
  }

  return doc
}
