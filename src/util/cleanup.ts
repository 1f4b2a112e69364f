// A stack of things to undo, run in reverse order of start-up, whatever happened in between.

export class CleanupStack {
  private readonly steps: Array<{name: string; run: () => unknown}> = []

  defer(name: string, run: () => unknown): void {
    this.steps.push({name, run})
  }

  /** Runs every step, last deferred first; a failing step does not stop the others. */
  async runAll(onError: (name: string, error: unknown) => void = () => {}): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        // In reverse order, one at a time: a step may depend on the ones deferred before it.
        // eslint-disable-next-line no-await-in-loop
        await step.run()
      } catch (error) {
        onError(step.name, error)
      }
    }
  }
}
