// Registry patterns in a multi-model serve: searched once at start (their matches join the models
// started), then followed with --reload-interval and on SIGHUP (matches added and removed while serving).
import type {ServeOptions} from '../config.js'
import {messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import type {ModelPattern} from './model-patterns.js'
import type {ModelSpec} from './model-specs.js'
import {PatternFollower, type ModelSet} from './pattern-follower.js'
import {matchPatterns} from './pattern-search.js'

export interface ServePatternsIo {
  readonly options: ServeOptions
  readonly log: Logger
  readonly stop: AbortSignal
  readonly onReloadRequest?: (listener: () => void) => () => void
  readonly onCheckFailed?: () => void
  /** Lists a match found at start (serve starts it with the others). */
  readonly listAtStart: (spec: ModelSpec) => void
  /** For tests: a search other than the registry's. */
  readonly match?: typeof matchPatterns
}

export interface ServedPatterns {
  /** The patterns that matched no model at start. */
  readonly unmatched: readonly ModelPattern[]
  /** Starts following them (--reload-interval, SIGHUP), once the models served at start have started. */
  start(): void
  /** Stops following; resolves once the removals it began have ended. Run before the models stop. */
  stop(): Promise<void>
}

/**
 * Lists the patterns' matches (io.listAtStart; serve starts them with the others). A failed
 * search throws when the patterns are all there is to serve; else it is logged and the others serve.
 */
export async function servePatterns(patterns: readonly ModelPattern[], table: ModelSet, io: ServePatternsIo): Promise<ServedPatterns> {
  const {options, log} = io
  const fixed = new Set(table.entries.map((entry) => entry.name))
  const context = {cwd: options.cwd, env: options.env, signal: io.stop, python: options.python, log}
  const match = io.match ?? matchPatterns
  let unmatched: readonly ModelPattern[] = []
  try {
    const found = await match(patterns, fixed, context)
    unmatched = found.unmatched
    for (const spec of found.specs) io.listAtStart(spec)
    for (const pattern of unmatched) log.warn(`${pattern.pattern} matched no registered model (nothing served for it yet)`)
    if (found.specs.length > 0) {
      log.info(`registry patterns: ${found.specs.map((spec) => `${spec.name} (${spec.uri})`).join(', ')}`)
    }
  } catch (error) {
    if (table.entries.length === 0) throw error
    log.warn(
      `registry search for ${patterns.map((pattern) => pattern.pattern).join(', ')} failed; serving the other models: ${messageOf(error)}`,
    )
    unmatched = patterns
  }

  const follower = new PatternFollower({
    patterns,
    fixed,
    table,
    context,
    intervalMs: options.reloadIntervalMs ?? 0,
    log,
    onCheckFailed: io.onCheckFailed,
    match,
  })
  let unsubscribe: (() => void) | undefined
  return {
    unmatched,
    start() {
      follower.start()
      unsubscribe = io.onReloadRequest?.(() => void follower.request())
    },
    async stop() {
      unsubscribe?.()
      await follower.stop()
    },
  }
}
