// Starts one scorer process for a slot through its backend: a command spawned as a process, or the
// backend's own start (a fork from the preloaded process), reached through an undici pool (and frames).
import type {EnvVars} from '../config.js'
import {freePort} from '../util/net.js'
import type {Backend, Endpoint} from './backend.js'
import {ScorerProcess, type OutputSink, type ScorerHandle} from './process.js'
import {Scorer, dispatcherFor} from './scorer.js'

export interface LaunchIo {
  readonly baseEnv: EnvVars
  /** "scorer" or "scorer <slot>": its output lines' prefix. */
  readonly label: string
  readonly stdout: OutputSink
  readonly stderr: OutputSink
  readonly cwd?: string
}

/** The slot's `start`-th scorer, started; its Unix socket (when it has one) at `socketPath`. */
export async function launchScorer(backend: Backend, index: number, start: number, socketPath: string, io: LaunchIo): Promise<Scorer> {
  const slotInfo = {index, start, socketPath, freePort}
  let started: {process: ScorerHandle; endpoint: Endpoint}
  if (backend.start) {
    started = await backend.start(slotInfo, io)
  } else {
    const {command, endpoint} = await backend.launch(slotInfo)
    started = {process: await ScorerProcess.start({command, ...io}), endpoint}
  }

  return new Scorer(index, start, started.process, dispatcherFor(started.endpoint), io.label)
}
