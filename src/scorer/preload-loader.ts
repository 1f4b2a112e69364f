// The preload mode's loaded process (one per model generation) and its control channel: JSON lines on
// a Unix socket saying loaded or why it cannot fork, forking scorers on request and reporting their exits.
import path from 'node:path'

import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import {TEMPLATES_DIR} from '../paths.js'
import {createDeferred} from '../util/deferred.js'
import type {StartIo} from './backend.js'
import {ForkChannel} from './fork-channel.js'
import {type ForkedScorer, LOADER_REPLY_MS} from './forked-scorer.js'
import {scorerEnv} from './pyfunc.js'
import {ScorerProcess, type ExitInfo, type ScorerHandle} from './process.js'

const PRELOAD_SCRIPT = path.join(TEMPLATES_DIR, 'python', 'preload.py')

/** What starting a loader needs (the preload backend's input). */
export interface LoaderInput {
  readonly python: string
  readonly modelDir: string
  readonly timeoutSeconds: number
  /** The forks serve mlserve_lean:app and listen for frames (see scorer/pyfunc.ts). */
  readonly fastPath?: boolean
  /** The model must be loaded within this long of the loader's start (--load-timeout; 0: no bound). */
  readonly loadTimeoutMs: number
  readonly log: Logger
  /**
   * Starts the loading process from elsewhere (several models: forked from the environment's loader,
   * env-loader.ts) with these variables and control socket; undefined: a fresh interpreter runs preload.py.
   */
  readonly launch?: (controlPath: string, env: Record<string, string>) => Promise<ScorerHandle>
}

type LoaderMessage = {readonly event: 'loaded'} | {readonly event: 'unsafe'; readonly reason: string}

/** Names it in messages. */
const WHO = 'the process that loaded the model'

/** One loaded process (the backend's n-th start of one) and its control channel. */
export class Loader {
  /** Found frozen and killed: its exit is on its way. */
  private frozen = false

  private constructor(
    readonly process: ScorerHandle,
    private readonly channel: ForkChannel,
    private readonly log: Logger,
  ) {}

  get gone(): boolean {
    return this.channel.gone
  }

  /** Starts the loader and waits for its verdict: loaded (forks may be asked for), or why it cannot fork. */
  static async start(input: LoaderInput, io: StartIo, socketDir: string, start: number): Promise<{loader: Loader} | {unsafe: string}> {
    const controlPath = path.join(socketDir, `preload-${start}.ctl`)
    const channel = await ForkChannel.listen(controlPath)
    let child: ScorerHandle
    const env = scorerEnv(input.modelDir, input.timeoutSeconds, input.fastPath === true)
    try {
      child = input.launch
        ? await input.launch(controlPath, env)
        : await ScorerProcess.start({command: {file: input.python, args: [PRELOAD_SCRIPT, controlPath], env, server: 'uvicorn'}, ...io})
    } catch (error) {
      channel.stopListening()
      throw error
    }

    const loader = new Loader(child, channel, input.log)
    const verdict = createDeferred<{loader: Loader} | {unsafe: string}>()
    if (input.loadTimeoutMs > 0) {
      const timer = setTimeout(() => {
        if (verdict.settled) return
        const seconds = Math.round(input.loadTimeoutMs / 1000)
        verdict.reject(
          new MlserveError(
            'LOAD_TIMEOUT',
            `The model did not load: the process loading it (--preload) took longer than ${seconds} s (--load-timeout).`,
            {
              suggestions: [
                "Read the scorer's output above, prefixed [scorer]: a load that hangs (a download, a lock) shows there.",
                'A model that takes longer to load needs a larger --load-timeout (MLSERVE_LOAD_TIMEOUT; 0: no bound).',
              ],
            },
          ),
        )
        child.killNow()
      }, input.loadTimeoutMs)
      timer.unref()
      void verdict.promise.then(
        () => clearTimeout(timer),
        () => clearTimeout(timer),
      )
    }

    void channel.connected.then((socket) => {
      channel.attach<LoaderMessage>(socket, loader, (message) => {
        if (message.event === 'loaded') verdict.resolve({loader})
        else if (message.event === 'unsafe') verdict.resolve({unsafe: message.reason})
      })
    })
    void child.exited.then((exit) => {
      loader.onGone(exit)
      const tail = child.stderrTail(1).trim()
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`
      verdict.reject(
        new MlserveError(
          'SCORER_START_FAILED',
          `The process loading the model (--preload) ${how} before it was loaded${tail ? `: ${tail}` : '.'}`,
          {
            suggestions: ['Its full output is above, prefixed [scorer]: a failed model load (a missing package, a corrupt file) shows there.'],
          },
        ),
      )
    })
    return verdict.promise
  }

  /** Asks the loader for a scorer serving on `socketPath` (and frames on `frameSocket`); resolves with it once forked. */
  async fork(socketPath: string, frameSocket?: string): Promise<ForkedScorer> {
    return this.channel.fork((id) => ({op: 'fork', id, socket: socketPath, ...(frameSocket ? {frames: frameSocket} : {})}), WHO, 'fork a scorer')
  }

  /** It did not do `what` within LOADER_REPLY_MS: frozen. Killed (its forks go too); the next start forks from a new one. */
  unresponsive(what: string): void {
    if (this.gone || this.frozen) return
    this.frozen = true
    this.log.warn(
      `--preload: the process that loaded the model (pid ${this.process.pid}) did not ${what} within ${LOADER_REPLY_MS / 1000} s: killing it; its scorers restart from a new one`,
    )
    this.process.killNow()
  }

  /** The loaded process died: the kernel SIGKILLs its forks (PR_SET_PDEATHSIG); the next fork needs a new one. */
  private onGone(exit: ExitInfo): void {
    // Its process group is SIGKILLed: any fork not yet gone by its parent-death signal goes now.
    this.process.killNow()
    this.channel.close(new Error(`${WHO} ${describe(exit)}`))
  }

  async stop(graceMs: number, force?: AbortSignal): Promise<void> {
    this.channel.end()
    await this.process.stop(graceMs, force)
  }
}

const describe = (exit: ExitInfo): string => (exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`)
