// Several models: one long-lived loader per environment (templates/python/env_loader.py) that imported
// MLflow's scoring server and the common libraries but no model; each model's --preload loader is a fork
// of it, so a cold load pays only that model's unpickling. Restarted on demand when it dies.
import {createServer, type Server, type Socket} from 'node:net'
import path from 'node:path'
import {createInterface} from 'node:readline'

import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import {TEMPLATES_DIR} from '../paths.js'
import {createDeferred, type Deferred} from '../util/deferred.js'
import {ForkedScorer, LOADER_REPLY_MS} from './forked-scorer.js'
import {ScorerProcess, type ScorerHandle} from './process.js'
import type {SupervisorOptions} from './supervisor-options.js'

const ENV_LOADER_SCRIPT = path.join(TEMPLATES_DIR, 'python', 'env_loader.py')

type Message =
  | {readonly event: 'ready'; readonly imported?: string[]}
  | {readonly event: 'unsafe'; readonly reason: string}
  | {readonly event: 'forked'; readonly id: number; readonly pid: number}
  | {
      readonly event: 'exited'
      readonly pid: number
      readonly code: number | null
      readonly signal: string | null
      /** The exception that ended the fork (its output is mixed with its siblings'). */
      readonly error?: string | null
    }

/** What the loaders of one server share: where their control sockets go, how they start, their output. */
export interface EnvLoadersIo extends Pick<SupervisorOptions, 'baseEnv' | 'cwd' | 'stdout' | 'stderr' | 'log'> {
  /** A private directory for the loaders' control sockets. */
  readonly socketDir: string
}

/** One environment's loader process and its control channel. */
class EnvLoader {
  readonly forks = new Map<number, ForkedScorer>()
  private readonly pending = new Map<number, Deferred<ForkedScorer>>()
  private nextId = 0
  gone = false

  private constructor(
    readonly process: ScorerProcess,
    private readonly server: Server,
    private readonly channel: Socket,
    private readonly log: Logger,
  ) {}

  static async start(python: string, controlPath: string, label: string, io: EnvLoadersIo): Promise<EnvLoader> {
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(controlPath, resolve)
    })
    const connected = new Promise<Socket>((resolve) => server.once('connection', resolve))
    const child = await ScorerProcess.start({
      command: {file: python, args: [ENV_LOADER_SCRIPT, controlPath], env: {}, server: 'uvicorn'},
      baseEnv: io.baseEnv,
      cwd: io.cwd,
      stdout: io.stdout,
      stderr: io.stderr,
      label,
    }).catch((error: unknown) => {
      server.close()
      throw error
    })
    const ready = createDeferred<EnvLoader>()
    void child.exited.then((exit) => {
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`
      const tail = child.stderrTail(1).trim()
      ready.reject(
        new MlserveError('SCORER_START_FAILED', `The environment's loader (${label}) ${how} before it was ready${tail ? `: ${tail}` : '.'}`),
      )
      server.close()
    })
    void connected.then((socket) => {
      socket.on('error', () => {})
      const loader = new EnvLoader(child, server, socket, io.log)
      void child.exited.then(() => loader.onGone())
      const lines = createInterface({input: socket, crlfDelay: Number.POSITIVE_INFINITY})
      // A reset channel (the loader killed mid-write) ends the loader, which its exit reports: not a crash.
      lines.on('error', () => {})
      lines.on('line', (line) => {
        let message: Message
        try {
          message = JSON.parse(line) as Message
        } catch {
          return
        }

        if (message.event === 'ready') ready.resolve(loader)
        else if (message.event === 'unsafe') {
          ready.reject(new MlserveError('SCORER_START_FAILED', `The environment's loader cannot fork: ${message.reason}`))
          child.killNow()
        } else loader.onMessage(message)
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
    if (this.gone) throw new Error("the environment's loader is gone")
    const id = ++this.nextId
    const forked = createDeferred<ForkedScorer>()
    this.pending.set(id, forked)
    this.channel.write(JSON.stringify({...request, id, env}) + '\n')
    const timer = setTimeout(() => {
      if (this.pending.has(id)) this.unresponsive('fork a model loader')
    }, LOADER_REPLY_MS)
    timer.unref()
    return forked.promise.finally(() => clearTimeout(timer))
  }

  unresponsive(what: string): void {
    if (this.gone) return
    this.log.warn(`the environment's loader (pid ${this.process.pid}) did not ${what} within ${LOADER_REPLY_MS / 1000} s: killing it`)
    this.process.killNow()
  }

  private onMessage(message: Message): void {
    if (message.event === 'forked') {
      const scorer = new ForkedScorer(message.pid, this)
      this.forks.set(message.pid, scorer)
      this.pending.get(message.id)?.resolve(scorer)
      this.pending.delete(message.id)
    } else if (message.event === 'exited') {
      this.forks.get(message.pid)?.settle({exitCode: message.code, signal: message.signal}, message.error ?? undefined)
      this.forks.delete(message.pid)
    }
  }

  /** Gone: the kernel SIGKILLs its model loaders (PR_SET_PDEATHSIG), which take their scorers with them. */
  private onGone(): void {
    this.gone = true
    this.server.close()
    this.channel.destroy()
    this.process.killNow()
    for (const fork of this.forks.values()) {
      try {
        process.kill(fork.pid, 'SIGKILL')
      } catch {}

      fork.settle({exitCode: null, signal: 'SIGKILL'})
    }

    this.forks.clear()
    for (const pending of this.pending.values()) pending.reject(new Error("the environment's loader died"))
    this.pending.clear()
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
