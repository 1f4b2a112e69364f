// Models added and removed while serving (registry patterns): a new one gets its own stack and socket
// directory and starts loading; a removed one leaves the routes at once, then drains and stops.
import path from 'node:path'

import type {Logger} from '../log.js'
import type {ModelSpec} from './model-specs.js'
import type {ServedEntry} from './models.js'

export interface ModelTableIo {
  readonly log: Logger
  /** Aborts when mlserve stops: loads in progress end. */
  readonly stop: AbortSignal
  /** A new entry for `spec` (not started): serve's options with the spec's settings. */
  readonly entryOf: (spec: ModelSpec) => ServedEntry
  /** The grace a removed model's requests in flight get (0 once a second signal came). */
  readonly graceMs: () => number
  readonly force: AbortSignal
  /** Called once a removed model has stopped (its metric series are dropped). */
  readonly onRemoved?: (name: string) => void
}

/**
 * The live list of entries the router reads. The ones served at start are started by serve-models;
 * add() and remove() change the list while serving, each model in its own socket subdirectory.
 */
export class ModelTable {
  /** Added models' socket subdirectories are a0, a1, ... (those served at start are 0, 1, ...). */
  private added = 0
  private readonly loads = new Map<ServedEntry, {controller: AbortController; done: Promise<void>}>()

  constructor(
    readonly entries: ServedEntry[],
    private readonly socketDir: string,
    private readonly io: ModelTableIo,
  ) {}

  get(name: string): ServedEntry | undefined {
    return this.entries.find((entry) => entry.name === name)
  }

  /** Serves `spec` from now on: listed (state loading) at once, loaded in the background. */
  add(spec: ModelSpec): ServedEntry {
    const entry = this.io.entryOf(spec)
    this.entries.push(entry)
    const controller = new AbortController()
    const dir = path.join(this.socketDir, `a${this.added++}`)
    const done = entry.start(dir, AbortSignal.any([this.io.stop, controller.signal])).finally(() => this.loads.delete(entry))
    this.loads.set(entry, {controller, done})
    this.io.log.info(`model ${spec.name} added (${spec.uri}): loading`)
    return entry
  }

  /** Stops serving `name`: gone from the routes now, its requests in flight finish, then its scorers stop. */
  async remove(name: string): Promise<void> {
    const index = this.entries.findIndex((entry) => entry.name === name)
    if (index < 0) return
    const [entry] = this.entries.splice(index, 1) as [ServedEntry]
    this.io.log.info(`model ${name} removed: finishing its requests, then stopping its scorers`)
    const load = this.loads.get(entry)
    load?.controller.abort()
    await load?.done
    await entry.stop(this.io.graceMs(), this.io.force)
    this.io.onRemoved?.(name)
    this.io.log.info(`model ${name} stopped and released`)
  }
}
