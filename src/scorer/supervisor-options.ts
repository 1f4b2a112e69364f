// What a supervisor is given: the backend, how many scorers, their limits and deadlines, and hooks.
import type {EnvVars} from '../config.js'
import type {Logger} from '../log.js'
import type {Backend} from './backend.js'
import type {WarmupRequest} from './probe.js'
import type {OutputSink} from './process.js'
import type {RestartPolicy} from './restart-policy.js'
import type {RestartReason} from './scorer.js'

export interface SupervisorOptions {
  readonly backend: Backend
  readonly workers: number
  /** A private directory for the scorers' Unix sockets. */
  readonly socketDir: string
  readonly baseEnv: EnvVars
  readonly cwd?: string
  readonly stdout: OutputSink
  readonly stderr: OutputSink
  readonly log: Logger
  /** Requests one scorer works on at once; more wait in the proxy's queue. */
  readonly maxConcurrency: number
  /** Requests that may wait for a scorer; beyond that, 503. */
  readonly maxQueue: number
  /** The request timeout: bounds the warm-up prediction too. */
  readonly timeoutMs: number
  /** After a timed-out request, how long its work may run on before the scorer is replaced. */
  readonly stuckGraceMs: number
  /** An idle scorer is pinged this often; 3 unanswered pings in a row and it is restarted. 0: never. */
  readonly livenessIntervalMs: number
  /** A new scorer must answer its ready path within this long of its spawn, else it is killed. 0: no bound. */
  readonly loadTimeoutMs?: number
  readonly warmup?: WarmupRequest
  readonly restart?: RestartPolicy
  /** How long a stopping scorer may take after SIGTERM before SIGKILL. */
  readonly stopGraceMs: number
  readonly events?: SupervisorEvents
  /**
   * Ready only once every slot is (a reload's new generation): until then any scorer failing ends the
   * start, as the first one's failure does by default. Default: ready with the first scorer.
   */
  readonly requireAll?: boolean
  /** What the scorers serve, sent back with every response they answer (X-MLServe-Model-Version). */
  readonly modelVersion?: string
  /** Which model generation these scorers are (a reload's new one: 2, 3, ...), for the log. */
  readonly modelGeneration?: number
}

/** Hooks for metrics. */
export interface SupervisorEvents {
  onRestart?(reason: RestartReason): void
  onPhase?(phase: 'spawn' | 'load' | 'warmup', ms: number): void
  /** A slot serves again after a failure or replacement: seconds from the failure to ready. */
  onRestarted?(seconds: number): void
}
