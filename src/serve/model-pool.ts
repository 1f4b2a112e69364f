// The lifecycle of several models: each prepared once, loaded eagerly up to the limits or on its first
// request, unloaded least-recently-used-idle first under --max-loaded / --max-memory, loads bounded by
// --max-loading; requests wait for a load in model-admission.ts. add/remove are documented in models.ts.
import path from 'node:path'

import {MlserveError} from '../errors.js'
import type {PlainResponse} from '../proxy/responses.js'
import type {ServeOptions} from '../config.js'
import {Admission} from './model-admission.js'
import {chooseEvictions, expectedMemory, type LoadedModel} from './lru.js'
import type {ModelSpec} from './model-specs.js'
import {ServedEntry, type ModelContext} from './models.js'
import {Semaphore} from './semaphore.js'
import {measureMemory, type MemoryReading} from './pool-memory.js'

export interface PoolLimits {
  /** undefined: eager up to the limits, lazy beyond. */
  readonly load?: 'eager' | 'lazy'
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

const ROOM_WAIT_MS = 30_000 // how long a load waits for room (every loaded model busy) before a 503

export class ModelPool {
  readonly entries: ServedEntry[] = []
  private readonly slots: Semaphore
  private readonly loading = new Map<ServedEntry, Promise<boolean>>()
  private readonly evicting = new Map<ServedEntry, Promise<void>>()
  /** Loads past their room check (a load waiting for room does not hold any). */
  private readonly reserved = new Set<ServedEntry>()
  private readonly admission = new Admission(this)
  private roomWaiters: Array<() => void> = []
  private added = 0
  /** The last memory reading (models and shared loaders). */
  reading: MemoryReading = {total: 0, shared: 0}

  constructor(
    private readonly context: ModelContext,
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

  /**
   * Prepares every registered model (--max-loading at a time) and loads those the policy loads at start;
   * `onPrepared` is called once every one of them is prepared or failed preparing (readiness waits for it).
   */
  async startAll(onPrepared?: () => void): Promise<void> {
    let failure: unknown
    const halt = new AbortController()
    const stop = AbortSignal.any([this.stop, halt.signal])
    let preparing = this.entries.length
    const preparedOne = () => {
      if (--preparing === 0) onPrepared?.()
    }

    if (preparing === 0) onPrepared?.()
    await Promise.all(
      this.entries.map(async (entry) =>
        this.bringUp(entry, stop, preparedOne).then(() => {
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

  private async bringUp(entry: ServedEntry, stop = this.stop, onPrepared?: () => void): Promise<void> {
    try {
      await this.slots.run(async () => entry.prepare(stop))
    } finally {
      onPrepared?.()
    }

    if (entry.state !== 'unloaded' || stop.aborted || this.limits.load === 'lazy') return
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
      .filter((entry) => entry !== except && (entry.state === 'loaded' || this.reserved.has(entry)) && !this.evicting.has(entry))
      .map((entry) => ({
        name: entry.name,
        lastUsed: entry.lastUsed,
        busy: entry.busy + (this.reserved.has(entry) ? 1 : 0),
        memory: entry.memory ?? 0,
        entry,
      }))
  }

  private room(except: ServedEntry) {
    const models = this.loadedModels(except)
    return {maxLoaded: this.limits.maxLoaded, maxMemory: this.limits.maxMemory, loaded: models.length, memory: this.memoryOf(models)}
  }

  /** The shared loaders' last reading plus `models`' own. */
  private memoryOf(models: readonly LoadedModel[]): number {
    return this.reading.shared + models.reduce((sum, model) => sum + model.memory, 0)
  }

  /** Loads `entry` (evicting others first when a limit needs it); resolves true once it serves. */
  async load(entry: ServedEntry, stop = this.stop): Promise<boolean> {
    const known = this.loading.get(entry)
    if (known) return known
    const attempt = (async () => {
      await this.evicting.get(entry)
      await this.makeRoom(entry, stop)
      const began = performance.now()
      const ok = await this.slots.run(async () => !stop.aborted && entry.load(stop))
      const seconds = (performance.now() - began) / 1000
      if (stop.aborted) return false
      this.events.onLoad?.(entry.name, ok, seconds)
      entry.log.info(ok ? `loaded in ${Math.round(seconds * 1000)} ms` : `load failed after ${Math.round(seconds * 1000)} ms`)
      if (ok) await this.measure()
      return ok
    })().finally(() => {
      this.loading.delete(entry)
      this.reserved.delete(entry)
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
        // Its room is taken now, before the evictions finish: a load deciding meanwhile counts it.
        this.reserved.add(entry)
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

  /** For a request to `entry`: undefined once it is loaded (its load started if need be), else the 503 to answer. */
  async admit(entry: ServedEntry): Promise<PlainResponse | undefined> {
    return this.admission.admit(entry)
  }

  /** Whether `entry` is being loaded now (not just prepared). */
  isLoading(entry: ServedEntry): boolean {
    return this.loading.has(entry)
  }

  isEvicting(entry: ServedEntry): boolean {
    return this.evicting.has(entry)
  }

  /** Reads every loaded model's PSS and the shared loaders'; evicts idle models while over --max-memory. */
  async measure(): Promise<MemoryReading> {
    this.reading = await measureMemory(this.entries, this.context.envLoaders)
    const cap = this.limits.maxMemory
    // What is loaded now, not what was when the reading began: a measure that overlaps another's evictions
    // counts only the models still there (it once unloaded a second model for the same excess).
    const loaded = this.loadedModels()
    const memory = this.memoryOf(loaded)
    if (cap !== undefined && memory > cap) {
      const victims = chooseEvictions(loaded, {maxMemory: cap, loaded: loaded.length - 1, memory}, 0)
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
