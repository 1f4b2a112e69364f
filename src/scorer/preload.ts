// The preload mode of the pyfunc backend: one process per generation loads the model (preload-loader.ts),
// scorers are forked from it; when it cannot fork safely, the backend falls back to spawn for good.
import {stat} from 'node:fs/promises'
import path from 'node:path'

import {sleep} from '../util/abort.js'
import type {Backend, ScorerMode, SlotInfo, StartIo, StartedScorer} from './backend.js'
import {frameSocketFor} from './frame-dispatcher.js'
import {Loader, type LoaderInput} from './preload-loader.js'
import {ScorerProcess, type ScorerHandle} from './process.js'

export interface PreloadInput extends LoaderInput {
  /** The spawn-mode backend: used as it is after a fall-back, and for what both modes share. */
  readonly spawn: Backend
}

/** Resolves when `socketPath` exists, the scorer has exited, or after 2 s (the supervisor's /ping takes over). */
async function socketAppears(socketPath: string, scorer: ScorerHandle): Promise<void> {
  const deadline = performance.now() + 2000
  const exists = async () =>
    stat(socketPath).then(
      () => true,
      () => false,
    )
  // Polling in sequence is the point: each look waits for the one before.
  /* eslint-disable no-await-in-loop */
  while (scorer.running && performance.now() < deadline) {
    if (await exists()) return
    await sleep(5)
  }
  /* eslint-enable no-await-in-loop */
}

/**
 * The pyfunc backend in the preload mode: scorers are forked from a process that loaded the model once;
 * when that process cannot fork safely, it falls back to `spawn` (with a warning naming why) for good.
 */
export function preloadBackend(input: PreloadInput): Backend {
  let loader: Promise<Loader | undefined> | undefined
  let current: Loader | undefined
  /** How many loaded processes this backend started (1, 2, ...). */
  let starts = 0
  let fallback: string | undefined

  const loaderFor = async (io: StartIo, socketDir: string): Promise<Loader | undefined> => {
    if (current?.gone) {
      current = undefined
      loader = undefined
    }

    loader ??= (async () => {
      const started = await Loader.start(input, {...io, label: 'scorer'}, socketDir, ++starts)
      if ('unsafe' in started) {
        fallback = started.unsafe
        input.log.warn(`--preload: ${started.unsafe}; falling back to the spawn mode (each scorer loads its own copy of the model).`)
        return undefined
      }

      current = started.loader
      const where = input.launch ? ", forked from its environment's loader" : ''
      input.log.info(`--preload: the model is loaded once in pid ${current.process.pid}${where} (start ${starts}); scorers are forked from it`)
      return current
    })()
    // A loader that failed to start is forgotten, so that the next restart tries a new one.
    void loader.catch(() => {
      loader = undefined
    })
    return loader
  }

  return {
    ...input.spawn,
    mode: (): ScorerMode => (fallback === undefined ? 'preload' : 'spawn'),
    async start(slot: SlotInfo, io: StartIo): Promise<StartedScorer> {
      const loaded = fallback === undefined ? await loaderFor(io, path.dirname(slot.socketPath)) : undefined
      const endpoint = {kind: 'unix', socketPath: slot.socketPath} as const
      if (!loaded) {
        // Spawned as the spawn mode does it (with its frame socket under the fast path).
        const launched = await input.spawn.launch(slot)
        return {process: await ScorerProcess.start({command: launched.command, ...io}), endpoint: launched.endpoint}
      }

      // The fast path's forks also listen for frames (the lean protocol) beside their HTTP socket.
      const frameSocket = input.fastPath === true ? frameSocketFor(slot.socketPath) : undefined
      const forked = await loaded.fork(slot.socketPath, frameSocket)
      // A fork listens within milliseconds: waiting for its socket here spares the first /ping's retry delay.
      await socketAppears(slot.socketPath, forked)
      return {process: forked, endpoint: frameSocket ? {...endpoint, frameSocket} : endpoint}
    },
    async stop(graceMs, force) {
      await current?.stop(graceMs, force)
    },
    killNow() {
      current?.process.killNow()
    },
    pids: () => (current && !current.gone ? [current.process.pid] : []),
  }
}
