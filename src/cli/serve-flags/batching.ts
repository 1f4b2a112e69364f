// Serve's flags for --batch: merging queued /invocations requests into one prediction call.
import {Flags} from '@oclif/core'

export const batchingFlags = {
  batch: Flags.boolean({
    env: 'MLSERVE_BATCH',
    default: false,
    summary: 'Merge compatible /invocations requests into one prediction call (only for row-by-row models).',
    description:
      'While a call of one kind (same row format, columns, params and value kinds) is in flight, compatible requests wait for it and go together as the next call, up to --batch-max-rows rows (queued ones merge too), and each client gets exactly its own part of the answer. A request with no call of its kind in flight goes alone at once; requests that cannot merge keep the normal --max-concurrency. Only for models whose predictions are row by row: a model whose output is not one prediction per row makes mlserve send each request alone and stop batching.',
  }),
  'batch-max-rows': Flags.integer({
    env: 'MLSERVE_BATCH_MAX_ROWS',
    default: 1024,
    min: 1,
    summary: 'Most rows in one merged call with --batch.',
  }),
  'batch-wait': Flags.integer({
    env: 'MLSERVE_BATCH_WAIT',
    default: 0,
    min: 0,
    summary:
      'With --batch: milliseconds a request that finds a free scorer waits for compatible requests to join its call (0: never delay a request).',
  }),
}
