// Follows the registry patterns while serving (--reload-interval, SIGHUP): a model that starts matching
// is added, one that stops matching (renamed, deleted, its alias removed) is removed; one check at a time.
import {messageOf} from '../errors.js'
import type {Logger} from '../log.js'
import type {ModelPattern} from './model-patterns.js'
import type {ModelSpec} from './model-specs.js'
import {matchPatterns, type PatternContext, type PatternMatches} from './pattern-search.js'

/**
 * What the follower needs of the models served: the lifecycle's ModelPool has it (add, remove, get,
 * entries; written down in serve/models.ts), adapted in serve-models.ts so a removed model's series go.
 */
export interface ModelSet {
  readonly entries: ReadonlyArray<{readonly name: string; readonly spec: ModelSpec}>
  get(name: string): unknown
  /** Serves one more model (listed at once, loaded in the background). */
  add(spec: ModelSpec): unknown
  /** Stops serving it: 404 at once, its requests in flight finish, then its processes stop. */
  remove(name: string): Promise<void>
}

export interface PatternFollowerOptions {
  readonly patterns: readonly ModelPattern[]
  /** Names served otherwise (-m NAME=URI, --models): never added or removed here. */
  readonly fixed: ReadonlySet<string>
  readonly table: ModelSet
  readonly context: PatternContext
  /** Between checks, in ms (0: only on SIGHUP). */
  readonly intervalMs: number
  readonly log: Logger
  /** The search itself failed (tracking server down): counted; nothing changes. */
  readonly onCheckFailed?: () => void
  /** For tests and the bench: a search other than the registry's. */
  readonly match?: typeof matchPatterns
}

export class PatternFollower {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private again = false
  private stopped = false
  private readonly removals = new Set<Promise<void>>()

  constructor(private readonly options: PatternFollowerOptions) {}

  start(): void {
    const {intervalMs, patterns, log} = this.options
    if (intervalMs <= 0) return
    log.info(`following ${patterns.map((pattern) => pattern.pattern).join(', ')}: searching the registry every ${intervalMs / 1000} s`)
    this.schedule()
  }

  /** A check now; while one runs, one more is taken after it. Resolves when the check running now has ended. */
  async request(): Promise<void> {
    if (this.stopped) return
    if (this.running) {
      this.again = true
      return this.running
    }

    clearTimeout(this.timer)
    this.timer = undefined
    this.running = this.check().finally(() => {
      this.running = undefined
      if (this.again) {
        this.again = false
        void this.request()
      } else this.schedule()
    })
    return this.running
  }

  /** No more checks; resolves once a check in progress and the removals it began have ended. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
    await Promise.all(this.removals)
  }

  private schedule(): void {
    if (this.stopped || this.options.intervalMs <= 0 || this.timer) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.request()
    }, this.options.intervalMs)
    this.timer.unref()
  }

  private async check(): Promise<void> {
    const {patterns, fixed, table, context, log} = this.options
    let matches: PatternMatches
    try {
      matches = await (this.options.match ?? matchPatterns)(patterns, fixed, context)
    } catch (error) {
      if (this.stopped) return
      log.warn(
        `registry search for ${patterns.map((pattern) => pattern.pattern).join(', ')} failed, the models served stay: ${messageOf(error)}`,
      )
      this.options.onCheckFailed?.()
      return
    }

    if (this.stopped) return
    const wanted = new Map(matches.specs.map((spec) => [spec.name, spec]))
    for (const entry of [...table.entries]) {
      const {name} = entry
      if (fixed.has(name) || wanted.has(name) || matches.unknown.has(name)) continue
      log.info(`${entry.spec.uri} no longer matches ${patterns.map((pattern) => pattern.pattern).join(', ')}: removing model ${name}`)
      const removal = table.remove(name).catch((error: unknown) => {
        log.warn(`could not stop model ${name}: ${messageOf(error)}`)
      })
      this.removals.add(removal)
      void removal.finally(() => this.removals.delete(removal))
    }

    for (const [name, spec] of wanted) {
      if (table.get(name)) continue
      log.info(`${spec.uri} matches now: adding model ${name}`)
      void Promise.resolve(table.add(spec)).catch((error: unknown) => log.warn(`could not add model ${name}: ${messageOf(error)}`))
    }
  }
}
