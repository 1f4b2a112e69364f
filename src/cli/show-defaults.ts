// Flag declarations whose help always shows the default, booleans and zeros included.

/**
 * Every flag's help shows its default: oclif prints `[default: X]` except for booleans and falsy values,
 * so those say theirs in the summary (on/off, 0).
 */
export function showDefaults<T extends Record<string, {type: string; default?: unknown; summary?: string}>>(flags: T): T {
  const shown: Record<string, unknown> = {}
  for (const [name, flag] of Object.entries(flags)) {
    const hidden = flag.type === 'boolean' ? (flag.default ? 'on' : 'off') : flag.default === 0 ? '0' : undefined
    shown[name] = hidden === undefined ? flag : {...flag, summary: `${flag.summary ?? ''} Default: ${hidden}.`}
  }

  return shown as T
}
