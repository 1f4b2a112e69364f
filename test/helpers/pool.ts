// Runs independent slow steps of a test (server start-ups, builds) a few at a time instead of one after another.

/**
 * fn applied to every item with at most `limit` calls in flight; the results in the items' order, so that a
 * test can assert on them in a fixed order whatever order they finished in.
 */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = Array.from({length: items.length})
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      // eslint-disable-next-line no-await-in-loop
      results[index] = await fn(items[index]!, index)
    }
  }

  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
  return results
}
