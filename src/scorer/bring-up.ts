// A new scorer's way to ready: wait until it answers its ready path (within --load-timeout), then the
// warm-up prediction; each step a phase in the log, the first scorer's timings reported as data.
import type {Logger} from '../log.js'
import {waitUntilAnswering, warmUp, type WarmupRequest} from './probe.js'
import type {Scorer} from './scorer.js'
import type {SupervisorEvents} from './supervisor-options.js'

export interface BringUpOptions {
  readonly readyPath: string
  readonly log: Logger
  /** The scorer must answer within this long of its spawn (0 or undefined: no bound). */
  readonly loadTimeoutMs?: number
  readonly warmup?: WarmupRequest
  /** The request timeout: bounds the warm-up prediction. */
  readonly timeoutMs: number
  /** Whether the supervisor is stopping (the wait gives up). */
  readonly stopping: () => boolean
  /** The first scorer of a start reports its load and warm-up timings. */
  readonly events?: SupervisorEvents
}

/** How it went: ready to serve, gone (exited, stopped), not loaded in time, or its warm-up failed. */
export type BringUpResult = 'warm' | 'gone' | 'load-timeout' | {readonly warmupFailed: string}

/** Loads and warms up `scorer`, which is starting; `label` names it in the log, `first` reports timings. */
export async function bringUp(scorer: Scorer, label: string, first: boolean, options: BringUpOptions): Promise<BringUpResult> {
  const {log, warmup} = options
  const loading = log.phase(`load model in ${label}`, {live: true})
  const bound = options.loadTimeoutMs ?? 0
  const deadline = bound > 0 ? performance.now() + bound : Number.POSITIVE_INFINITY
  const loaded = await waitUntilAnswering(scorer, options.readyPath, deadline, options.stopping)
  if (loaded === 'timeout') return 'load-timeout'
  if (loaded === 'gone') return 'gone'
  const loadMs = loading.done()
  if (first) options.events?.onPhase?.('load', loadMs)
  if (!warmup) return 'warm'
  const warming = log.phase(`warm-up prediction in ${label} (${warmup.source})`)
  const failure = await warmUp(scorer, warmup, options.timeoutMs)
  if (scorer.state !== 'starting') return 'gone'
  if (failure) {
    log.warn(`${label}: the warm-up prediction failed: ${failure}`)
    return {warmupFailed: failure}
  }

  const warmupMs = warming.done()
  if (first) options.events?.onPhase?.('warmup', warmupMs)
  return 'warm'
}
