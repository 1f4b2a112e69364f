// The argv and environment that start one scorer process (every backend builds one).

/** An argv-array command, never a shell string. */
export interface ScorerCommand {
  readonly file: string
  readonly args: readonly string[]
  /** Variables added to the inherited environment. */
  readonly env: Readonly<Record<string, string>>
  /** What serves the app, for logs. */
  readonly server: string
}
