// Which loaded models make room for a load: the least recently used idle ones first, never a model with
// requests in flight or queued, and only as many as the --max-loaded and --max-memory limits need.

/** What the policy knows of one loaded model. */
export interface LoadedModel {
  readonly name: string
  /** performance.now() of its last request (or of its load, before any request). */
  readonly lastUsed: number
  /** Requests in flight or waiting for it: never evicted while it has any. */
  readonly busy: number
  /** Its processes' PSS in bytes (0: not measured yet). */
  readonly memory: number
}

/** The limits (undefined: none) and what the server holds now. */
export interface Room {
  readonly maxLoaded?: number
  readonly maxMemory?: number
  /** Models loaded or loading now (the one to load not counted). */
  readonly loaded: number
  /** Bytes in use now: every model's PSS and the shared processes'. */
  readonly memory: number
}

/** The models to unload, oldest use first, so that one more model of `incoming` bytes fits; undefined: it cannot fit. */
export function chooseEvictions(models: readonly LoadedModel[], room: Room, incoming: number): LoadedModel[] | undefined {
  const idle = models.filter((model) => model.busy === 0).sort((a, b) => a.lastUsed - b.lastUsed)
  const victims: LoadedModel[] = []
  let {loaded, memory} = room
  const fits = () =>
    (room.maxLoaded === undefined || loaded + 1 <= room.maxLoaded) && (room.maxMemory === undefined || memory + incoming <= room.maxMemory)
  for (const model of idle) {
    if (fits()) break
    victims.push(model)
    loaded--
    memory -= model.memory
  }

  // With nothing else loaded, a model larger than --max-memory still gets its turn (else nothing could serve it).
  return fits() || loaded === 0 ? victims : undefined
}

/** What a model not measured yet is expected to take: its own last measure, else the mean of the loaded ones. */
export function expectedMemory(own: number | undefined, loaded: readonly LoadedModel[]): number {
  if (own !== undefined && own > 0) return own
  const measured = loaded.filter((model) => model.memory > 0)
  return measured.length === 0 ? 0 : Math.round(measured.reduce((sum, model) => sum + model.memory, 0) / measured.length)
}
