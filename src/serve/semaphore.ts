// At most N things at once (--max-loading: models resolving, building or loading), the rest in order.

export class Semaphore {
  private active = 0
  private readonly queue: Array<() => void> = []

  constructor(private readonly limit: number) {}

  /** Runs `work` once fewer than `limit` others run. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve))
    this.active++
    try {
      return await work()
    } finally {
      this.active--
      this.queue.shift()?.()
    }
  }
}
