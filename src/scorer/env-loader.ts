// Several models: one long-lived loader per environment (templates/python/env_loader.py) that imported
// MLflow's scoring server and the common libraries but no model; each model's --preload loader is a fork
// of it, so a cold load pays only that model's unpickling. Restarted on demand when it dies.
import path from 'node:path'

import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import {TEMPLATES_DIR} from '../paths.js'
import {createDeferred} from '../util/deferred.js'
import {ForkChannel} from './fork-channel.js'
import {type ForkedScorer, LOADER_REPLY_MS} from './forked-scorer.js'
import {ScorerProcess, type ScorerHandle} from './process.js'
import type {SupervisorOptions} from './supervisor-options.js'

const ENV_LOADER_SCRIPT = path.join(TEMPLATES_DIR, 'python', 'env_loader.py')

type Message = {readonly event: 'ready'; readonly imported?: string[]} | {readonly event: 'unsafe'; readonly reason: string}

/** What the loaders of one server share: where their control sockets go, how they start, their output. */
export interface EnvLoadersIo extends Pick<SupervisorOptions, 'baseEnv' | 'cwd' | 'stdout' | 'stderr' | 'log'> {
  /** A private directory for the loaders' control sockets. */
  readonly socketDir: string
}

/** One environment's loader process and its control channel. */
class EnvLoader {
  private constructor(
    readonly process: ScorerProcess,
    private readonly channel: ForkChannel,
    private readonly log: Logger,
  ) {}

  get gone(): boolean {
    return this.channel.gone
  }

  static async start(python: string, controlPath: string, label: string, io: EnvLoadersIo): Promise<EnvLoader> {
    const channel = await ForkChannel.listen(controlPath)
    const child = await ScorerProcess.start({
      command: {file: python, args: [ENV_LOADER_SCRIPT, controlPath], env: {}, server: 'uvicorn'},
      baseEnv: io.baseEnv,
      cwd: io.cwd,
      stdout: io.stdout,
      stderr: io.stderr,
      label,
    }).catch((error: unknown) => {
      channel.stopListening()
      throw error
    })
    const ready = createDeferred<EnvLoader>()
    void child.exited.then((exit) => {
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`
      const tail = child.stderrTail(1).trim()
      ready.reject(
        new MlserveError('SCORER_START_FAILED', `The environment's loader (${label}) ${how} before it was ready${tail ? `: ${tail}` : '.'}`),
      )
      channel.stopListening()
    })
    void channel.connected.then((socket) => {
      const loader = new EnvLoader(child, channel, io.log)
      void child.exited.then(() => loader.onGone())
      channel.attach<Message>(socket, loader, (message) => {
        if (message.event === 'ready') ready.resolve(loader)
        else if (message.event === 'unsafe') {
          ready.reject(new MlserveError('SCORER_START_FAILED', `The environment's loader cannot fork: ${message.reason}`))
          child.killNow()
        }
      })
    })
    return ready.promise
  }

  /**
   * Forks, with `env` set, a model loader that runs preload.py's main on a control socket (`load`), or a
   * scorer that loads the model and serves it on a socket itself (`serve`).
   */
  async fork(
    request: {op: 'load'; control: string} | {op: 'serve'; socket: string; frames?: string},
    env: Record<string, string>,
  ): Promise<ForkedScorer> {
    return this.channel.fork((id) => ({...request, id, env}), "the environment's loader", 'fork a model loader')
  }

  unresponsive(what: string): void {
    if (this.gone) return
    this.log.warn(`the environment's loader (pid ${this.process.pid}) did not ${what} within ${LOADER_REPLY_MS / 1000} s: killing it`)
    this.process.killNow()
  }

  /** Gone: the kernel SIGKILLs its model loaders (PR_SET_PDEATHSIG), which take their scorers with them. */
  private onGone(): void {
    this.process.killNow()
    this.channel.close(new Error("the environment's loader died"), true)
  }
}

/** The loaders of one server, one per environment key, each started when first needed and again after it died. */
export class EnvLoaders {
  private readonly loaders = new Map<string, Promise<EnvLoader>>()
  private readonly live = new Map<string, EnvLoader>()
  private starts = 0
  private stopped = false

  constructor(private readonly io: EnvLoadersIo) {}

  /** How a model of environment `key` (interpreter `python`) starts its loader: forked from the environment's. */
  launcherFor(key: string, python: string): (controlPath: string, env: Record<string, string>) => Promise<ScorerHandle> {
    return async (controlPath, env) => (await this.loaderOf(key, python)).fork({op: 'load', control: controlPath}, env)
  }

  /**
   * How a model of environment `key` starts a scorer that loads it and serves on a socket (-w 1), and
   * frames on `frameSocket` when given (the lean protocol, as spawned and preloaded scorers do).
   */
  serverFor(key: string, python: string): (socketPath: string, env: Record<string, string>, frameSocket?: string) => Promise<ScorerHandle> {
    return async (socketPath, env, frameSocket) =>
      (await this.loaderOf(key, python)).fork({op: 'serve', socket: socketPath, ...(frameSocket ? {frames: frameSocket} : {})}, env)
  }

  private async loaderOf(key: string, python: string): Promise<EnvLoader> {
    if (this.stopped) throw new Error('mlserve is stopping')
    const known = this.live.get(key)
    if (known?.gone) {
      this.live.delete(key)
      this.loaders.delete(key)
      this.io.log.warn(`the loader of environment ${short(key)} (pid ${known.process.pid}) is gone: starting a new one; its models restart`)
    }

    let loader = this.loaders.get(key)
    if (!loader) {
      const n = ++this.starts
      const began = performance.now()
      loader = EnvLoader.start(python, path.join(this.io.socketDir, `env-${n}.ctl`), `env ${short(key)}`, this.io).then((started) => {
        this.live.set(key, started)
        this.io.log.info(
          `environment ${short(key)}: loader ready in ${Math.round(performance.now() - began)} ms (pid ${started.process.pid}); its models are forked from it`,
        )
        return started
      })
      this.loaders.set(key, loader)
      loader.catch(() => this.loaders.delete(key))
    }

    return loader
  }

  /** Each loader running now: its environment key and pid (GET /models, memory). */
  running(): Array<{key: string; pid: number}> {
    return [...this.live].filter(([, loader]) => !loader.gone).map(([key, loader]) => ({key, pid: loader.process.pid}))
  }

  async stop(graceMs: number, force?: AbortSignal): Promise<void> {
    this.stopped = true
    await Promise.all([...this.live.values()].map(async (loader) => loader.process.stop(graceMs, force)))
  }

  killNow(): void {
    for (const loader of this.live.values()) loader.process.killNow()
  }
}

const short = (key: string) => (key.startsWith('local:') ? 'local' : key.slice(0, 12))
