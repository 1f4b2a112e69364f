// The lifecycle of several models: each prepared once, loaded eagerly up to the limits or on its first
// request, unloaded least-recently-used-idle first under --max-loaded / --max-memory, loads bounded by
// --max-loading; requests for a model being loaded wait in a bounded queue. The add/remove interface is
// documented in models.ts.
import path from 'node:path'

import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import type {PlainResponse} from '../proxy/responses.js'
import {errorEnvelope} from '../proxy/responses.js'
import type {ServeOptions} from '../config.js'
import {chooseEvictions, expectedMemory, type LoadedModel} from './lru.js'
import type {ModelSpec} from './model-specs.js'
import {ServedEntry, type ModelContext} from './models.js'
import {Semaphore} from './semaphore.js'
import {measureMemory, type MemoryReading} from './pool-memory.js'

export type LoadPolicy = 'eager' | 'lazy'

export interface PoolLimits {
  /** undefined: eager up to the limits, lazy beyond. */
  readonly load?: LoadPolicy
  readonly maxLoaded?: number
  readonly maxMemory?: number
  readonly maxLoading: number
  /** Fail at start as soon as one model fails. */
  readonly strict: boolean
}

/** What the pool reports (log and /metrics). */
export interface PoolEvents {
  readonly onLoad?: (model: string, ok: boolean, seconds: number) => void
  readonly onEvict?: (model: string, seconds: number) => void
}

/** How long a request may wait for room (every loaded model busy) before a 503. */
const ROOM_WAIT_MS = 30_000

export class ModelPool {
  readonly entries: ServedEntry[] = []
  private readonly slots: Semaphore
  private readonly loading = new Map<ServedEntry, Promise<boolean>>()
  private readonly evicting = new Map<ServedEntry, Promise<void>>()
  private readonly waiting = new Map<ServedEntry, number>()
  private roomWaiters: Array<() => void> = []
  private added = 0
  /** The last memory reading (models and shared loaders). */
  reading: MemoryReading = {total: 0, shared: 0}

  constructor(
    private readonly context: ModelContext & {readonly log: Logger},
    private readonly limits: PoolLimits,
    private readonly socketDir: string,
    private readonly stop: AbortSignal,
    private readonly optionsFor: (spec: ModelSpec) => ServeOptions,
    private readonly events: PoolEvents = {},
  ) {
    this.slots = new Semaphore(limits.maxLoading)
  }

  get(name: string): ServedEntry | undefined {
    return this.entries.find((entry) => entry.name === name)
  }

  /** Serves one more model (see models.ts); prepares it and loads it per --load and the limits. */
  async add(spec: ModelSpec): Promise<ServedEntry> {
    const entry = this.register(spec)
    await this.bringUp(entry)
    return entry
  }

  /** Routed from now on (loading), nothing started yet. */
  register(spec: ModelSpec): ServedEntry {
    if (this.get(spec.name)) throw new MlserveError('INVALID_ARGUMENT', `A model named "${spec.name}" is served already.`)
    const entry = new ServedEntry(spec, this.optionsFor(spec), this.context, path.join(this.socketDir, String(this.added++)))
    this.entries.push(entry)
    return entry
  }

  /** No new request reaches it; its requests finish, its processes stop, its environment is released. */
  async remove(name: string, graceMs = this.context.stopGraceMs): Promise<void> {
    const entry = this.get(name)
    if (!entry) return
    this.entries.splice(this.entries.indexOf(entry), 1)
    await this.loading.get(entry)?.catch(() => {})
    await entry.stop(graceMs)
    this.roomChanged()
  }

  /** Prepares every registered model (--max-loading at a time) and loads those the policy loads at start. */
  async startAll(): Promise<void> {
    let failure: unknown
    const halt = new AbortController()
    const stop = AbortSignal.any([this.stop, halt.signal])
    await Promise.all(
      this.entries.map(async (entry) =>
        this.bringUp(entry, stop).then(() => {
          if (this.limits.strict && entry.state === 'failed' && failure === undefined) {
            failure = entry
            halt.abort()
          }
        }),
      ),
    )
    if (failure) {
      const failed = this.entries.filter((entry) => entry.state === 'failed')
      throw new MlserveError(
        'SCORER_START_FAILED',
        `${failed.length} of ${this.entries.length} models could not be served (--strict): ${failed.map((entry) => `${entry.name}: ${entry.error}`).join('; ')}`,
        {suggestions: ["Each model's own error is logged above (lines starting with its name)."]},
      )
    }
  }

  private async bringUp(entry: ServedEntry, stop = this.stop): Promise<void> {
    await this.slots.run(async () => entry.prepare(stop))
    if (entry.state !== 'unloaded' || stop.aborted) return
    if (this.limits.load === 'lazy') return
    if (!this.fitsWithoutEviction(entry)) {
      entry.log.info(`left unloaded (the limits are reached): loaded on its first request`)
      return
    }

    await this.load(entry, stop)
  }

  /** Whether `entry` can load now with nothing evicted. */
  private fitsWithoutEviction(entry: ServedEntry): boolean {
    const victims = chooseEvictions(this.loadedModels(entry), this.room(entry), expectedMemory(entry.memory, this.loadedModels(entry)))
    return victims !== undefined && victims.length === 0
  }

  private loadedModels(except?: ServedEntry): LoadedModel[] {
    return this.entries
      .filter((entry) => entry !== except && (entry.state === 'loaded' || this.loading.has(entry)) && !this.evicting.has(entry))
      .map((entry) => ({
        name: entry.name,
        lastUsed: entry.lastUsed,
        busy: entry.busy + (this.loading.has(entry) ? 1 : 0),
        memory: entry.memory ?? 0,
        entry,
      }))
  }

  private room(except: ServedEntry) {
    const models = this.loadedModels(except)
    const memory = this.reading.shared + models.reduce((sum, model) => sum + model.memory, 0)
    return {maxLoaded: this.limits.maxLoaded, maxMemory: this.limits.maxMemory, loaded: models.length, memory}
  }

  /** Loads `entry` (evicting others first when a limit needs it); resolves true once it serves. */
  async load(entry: ServedEntry, stop = this.stop): Promise<boolean> {
    const known = this.loading.get(entry)
    if (known) return known
    const attempt = (async () => {
      await this.evicting.get(entry)
      await this.makeRoom(entry, stop)
      const began = performance.now()
      const ok = await this.slots.run(async () => entry.load(stop))
      const seconds = (performance.now() - began) / 1000
      if (stop.aborted) return false
      this.events.onLoad?.(entry.name, ok, seconds)
      entry.log.info(ok ? `loaded in ${Math.round(seconds * 1000)} ms` : `load failed after ${Math.round(seconds * 1000)} ms`)
      if (ok) await this.measure()
      return ok
    })().finally(() => {
      this.loading.delete(entry)
      this.roomChanged()
    })
    this.loading.set(entry, attempt)
    return attempt
  }

  /** Unloads least recently used idle models until `entry` fits; waits (bounded) while every candidate is busy. */
  private async makeRoom(entry: ServedEntry, stop: AbortSignal): Promise<void> {
    const deadline = performance.now() + ROOM_WAIT_MS
    for (;;) {
      const loaded = this.loadedModels(entry)
      const victims = chooseEvictions(loaded, this.room(entry), expectedMemory(entry.memory, loaded))
      if (victims) {
        // eslint-disable-next-line no-await-in-loop
        await Promise.all(victims.map(async (victim) => this.evict((victim as LoadedModel & {entry: ServedEntry}).entry)))
        return
      }

      if (stop.aborted || performance.now() > deadline) {
        throw new MlserveError('SCORER_START_FAILED', `no room to load ${entry.name}: every loaded model has requests in flight`)
      }

      // eslint-disable-next-line no-await-in-loop
      await new Promise<void>((resolve) => {
        this.roomWaiters.push(resolve)
        setTimeout(resolve, 1000).unref()
      })
    }
  }

  private async evict(entry: ServedEntry): Promise<void> {
    const began = performance.now()
    const unloading = entry.unload(this.context.stopGraceMs).finally(() => this.evicting.delete(entry))
    this.evicting.set(entry, unloading)
    await unloading
    const seconds = (performance.now() - began) / 1000
    entry.log.info(`unloaded (least recently used, to make room) in ${Math.round(seconds * 1000)} ms`)
    this.events.onEvict?.(entry.name, seconds)
  }

  /** A request finished or a load ended: a load waiting for room looks again. */
  roomChanged(): void {
    const waiters = this.roomWaiters
    this.roomWaiters = []
    for (const wake of waiters) wake()
  }

  /**
   * For a request to `entry`: resolves undefined once it is loaded (starting its load if it is not), or the
   * 503 to answer (its queue is full, its load failed).
   */
  async admit(entry: ServedEntry): Promise<PlainResponse | undefined> {
    if (entry.state === 'loaded' && !this.evicting.has(entry)) return undefined
    if (entry.state === 'failed') return undefined
    if (entry.state === 'loading' && !this.loading.has(entry)) return busy(`The model ${entry.name} is still being prepared.`)
    const queued = this.waiting.get(entry) ?? 0
    if (queued >= entry.options.maxQueue) {
      return busy(`The model ${entry.name} is being loaded and ${queued} requests already wait for it (--max-queue).`)
    }

    this.waiting.set(entry, queued + 1)
    try {
      const ok = await this.load(entry).catch(() => false)
      // Loaded: it serves; failed: the routes answer with its error.
      if (ok || isFailed(entry)) return undefined
      return busy(`The model ${entry.name} could not be loaded now${entry.error ? `: ${entry.error}` : ''}.`)
    } finally {
      this.waiting.set(entry, (this.waiting.get(entry) ?? 1) - 1)
    }
  }

  /** Reads every loaded model's PSS and the shared loaders'; evicts idle models while over --max-memory. */
  async measure(): Promise<MemoryReading> {
    this.reading = await measureMemory(this.entries, this.context.envLoaders)
    const cap = this.limits.maxMemory
    if (cap !== undefined && this.reading.total > cap) {
      const loaded = this.loadedModels()
      const victims = chooseEvictions(loaded, {maxMemory: cap, loaded: loaded.length - 1, memory: this.reading.total}, 0)
      for (const victim of victims ?? []) void this.evict((victim as LoadedModel & {entry: ServedEntry}).entry)
    }

    return this.reading
  }

  async stopAll(graceMs: number, force?: AbortSignal): Promise<void> {
    await Promise.all(this.entries.map(async (entry) => entry.stop(graceMs, force)))
    await this.context.envLoaders?.stop(graceMs, force)
  }

  killNow(): void {
    for (const entry of this.entries) entry.killNow()
    this.context.envLoaders?.killNow()
  }
}

const isFailed = (entry: ServedEntry): boolean => entry.state === 'failed'

const busy = (message: string): PlainResponse => ({
  ...errorEnvelope(503, 'TEMPORARILY_UNAVAILABLE', message),
  headers: {'retry-after': '1'},
})
