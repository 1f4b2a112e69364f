// The preload mode's loaded process (one per model generation) and its control channel: JSON lines on
// a Unix socket saying loaded or why it cannot fork, forking scorers on request and reporting their exits.
import {createServer, type Server, type Socket} from 'node:net'
import path from 'node:path'
import {createInterface} from 'node:readline'

import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import {TEMPLATES_DIR} from '../paths.js'
import {createDeferred, type Deferred} from '../util/deferred.js'
import type {StartIo} from './backend.js'
import {ForkedScorer, LOADER_REPLY_MS} from './forked-scorer.js'
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

type LoaderMessage =
  | {readonly event: 'loaded'}
  | {readonly event: 'unsafe'; readonly reason: string}
  | {readonly event: 'forked'; readonly id: number; readonly pid: number}
  | {readonly event: 'exited'; readonly pid: number; readonly code: number | null; readonly signal: string | null}

/** One loaded process (the backend's n-th start of one) and its control channel. */
export class Loader {
  readonly forks = new Map<number, ForkedScorer>()
  private readonly pending = new Map<number, Deferred<ForkedScorer>>()
  private nextId = 0
  private channel: Socket | undefined
  gone = false
  /** Found frozen and killed: its exit is on its way. */
  private frozen = false

  private constructor(
    readonly process: ScorerHandle,
    private readonly server: Server,
    private readonly log: Logger,
  ) {}

  /** Starts the loader and waits for its verdict: loaded (forks may be asked for), or why it cannot fork. */
  static async start(input: LoaderInput, io: StartIo, socketDir: string, start: number): Promise<{loader: Loader} | {unsafe: string}> {
    const controlPath = path.join(socketDir, `preload-${start}.ctl`)
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(controlPath, resolve)
    })
    const connected = new Promise<Socket>((resolve) => server.once('connection', resolve))
    let child: ScorerHandle
    const env = scorerEnv(input.modelDir, input.timeoutSeconds, input.fastPath === true)
    try {
      child = input.launch
        ? await input.launch(controlPath, env)
        : await ScorerProcess.start({command: {file: input.python, args: [PRELOAD_SCRIPT, controlPath], env, server: 'uvicorn'}, ...io})
    } catch (error) {
      server.close()
      throw error
    }

    const loader = new Loader(child, server, input.log)
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

    void connected.then((socket) => {
      loader.channel = socket
      socket.on('error', () => {})
      const lines = createInterface({input: socket, crlfDelay: Number.POSITIVE_INFINITY})
      lines.on('error', () => {})
      lines.on('line', (line) => {
        let message: LoaderMessage
        try {
          message = JSON.parse(line) as LoaderMessage
        } catch {
          return
        }

        if (message.event === 'loaded') verdict.resolve({loader})
        else if (message.event === 'unsafe') verdict.resolve({unsafe: message.reason})
        else loader.onMessage(message)
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
    if (this.gone || !this.channel) throw new Error('the process that loaded the model is gone')
    const id = ++this.nextId
    const forked = createDeferred<ForkedScorer>()
    this.pending.set(id, forked)
    this.channel.write(JSON.stringify({op: 'fork', id, socket: socketPath, ...(frameSocket ? {frames: frameSocket} : {})}) + '\n')
    const timer = setTimeout(() => {
      if (this.pending.has(id)) this.unresponsive('fork a scorer')
    }, LOADER_REPLY_MS)
    timer.unref()
    void forked.promise.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    )
    return forked.promise
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

  private onMessage(message: LoaderMessage): void {
    if (message.event === 'forked') {
      const scorer = new ForkedScorer(message.pid, this)
      this.forks.set(message.pid, scorer)
      this.pending.get(message.id)?.resolve(scorer)
      this.pending.delete(message.id)
    } else if (message.event === 'exited') {
      this.forks.get(message.pid)?.settle({exitCode: message.code, signal: message.signal})
      this.forks.delete(message.pid)
    }
  }

  /** The loaded process died: the kernel SIGKILLs its forks (PR_SET_PDEATHSIG); the next fork needs a new one. */
  private onGone(exit: ExitInfo): void {
    this.gone = true
    this.server.close()
    this.channel?.destroy()
    // Its process group is SIGKILLed: any fork not yet gone by its parent-death signal goes now.
    this.process.killNow()
    for (const scorer of this.forks.values()) scorer.settle({exitCode: null, signal: 'SIGKILL'})
    this.forks.clear()
    for (const pending of this.pending.values()) pending.reject(new Error(`the process that loaded the model ${describe(exit)}`))
    this.pending.clear()
  }

  async stop(graceMs: number, force?: AbortSignal): Promise<void> {
    this.channel?.end()
    await this.process.stop(graceMs, force)
  }
}

const describe = (exit: ExitInfo): string => (exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`)
