// A request for a model that is not loaded: it starts the model's load and waits for it in the model's own
// bounded queue (--max-queue); a full queue or a failed load answers 503 with Retry-After (MLflow's envelope).
import type {PlainResponse} from '../proxy/responses.js'
import {errorEnvelope} from '../proxy/responses.js'
import type {ServedEntry} from './models.js'

/** What admission needs of the lifecycle. */
export interface Loads {
  load(entry: ServedEntry): Promise<boolean>
  isLoading(entry: ServedEntry): boolean
  isEvicting(entry: ServedEntry): boolean
}

export class Admission {
  private readonly waiting = new Map<ServedEntry, number>()

  constructor(private readonly pool: Loads) {}

  /**
   * For a request to `entry`: resolves undefined once it is loaded (starting its load if it is not), or the
   * 503 to answer (its queue is full, its load failed).
   */
  async admit(entry: ServedEntry): Promise<PlainResponse | undefined> {
    if (entry.state === 'loaded' && !this.pool.isEvicting(entry)) return undefined
    if (entry.state === 'failed') return undefined
    if (entry.state === 'loading' && !this.pool.isLoading(entry)) return busy(`The model ${entry.name} is still being prepared.`)
    const queued = this.waiting.get(entry) ?? 0
    if (queued >= entry.options.maxQueue) {
      return busy(`The model ${entry.name} is being loaded and ${queued} requests already wait for it (--max-queue).`)
    }

    this.waiting.set(entry, queued + 1)
    try {
      const ok = await this.pool.load(entry).catch(() => false)
      // Loaded: it serves; failed: the routes answer with its error.
      if (ok || isFailed(entry)) return undefined
      return busy(`The model ${entry.name} could not be loaded now${entry.error ? `: ${entry.error}` : ''}.`)
    } finally {
      this.waiting.set(entry, (this.waiting.get(entry) ?? 1) - 1)
    }
  }
}

const isFailed = (entry: ServedEntry): boolean => entry.state === 'failed'

const busy = (message: string): PlainResponse => errorEnvelope(503, 'TEMPORARILY_UNAVAILABLE', message, {'retry-after': '1'})
