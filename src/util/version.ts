// Compares dotted release versions such as "2.21.0", "3.17.2" or "2.9.0rc1" (pre-release tags ignored).

/** The numeric release parts of a version string: "2.21.0.dev0" gives [2, 21, 0]. */
export function releaseParts(version: string): number[] {
  const match = /^\s*v?(\d+(?:\.\d+)*)/.exec(version)
  return match ? match[1]!.split('.').map(Number) : []
}

/** Negative, zero or positive as a is older, equal to or newer than b (release parts only). */
export function compareVersions(a: string, b: string): number {
  const left = releaseParts(a)
  const right = releaseParts(b)
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const diff = (left[i] ?? 0) - (right[i] ?? 0)
    if (diff !== 0) return diff
  }

  return 0
}

export const isAtLeast = (version: string, minimum: string): boolean => compareVersions(version, minimum) >= 0
