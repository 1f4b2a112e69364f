// Names close to a mistyped one: for "did you mean" hints (commands, registered models).

/** Levenshtein edit distance (insertions, deletions, substitutions). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }

    previous = current
  }

  return previous[b.length]!
}

/**
 * The candidates near `name`, closest first (at most `limit`): within an edit distance of a third of
 * the name (at least 2), or containing it (or contained in it), ignoring case.
 */
export function nearNames(name: string, candidates: readonly string[], limit = 5): string[] {
  const wanted = name.toLowerCase()
  const threshold = Math.max(2, Math.floor(wanted.length / 3))
  return candidates
    .map((candidate) => {
      const lower = candidate.toLowerCase()
      const contained = wanted.length >= 3 && (lower.includes(wanted) || wanted.includes(lower))
      const distance = editDistance(wanted, lower)
      return {candidate, distance, near: distance <= threshold || contained}
    })
    .filter(({candidate, near}) => near && candidate !== name)
    .sort((a, b) => a.distance - b.distance || a.candidate.localeCompare(b.candidate))
    .slice(0, limit)
    .map(({candidate}) => candidate)
}
