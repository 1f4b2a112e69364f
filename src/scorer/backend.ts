// What the supervisor needs from a kind of scorer (MLflow's pyfunc server, the R crate scorer, MLServer):
// how to start one process of it, where it listens, and how to tell that it is ready.
import type {PlainResponse} from '../upstream.js'
import type {ScorerCommand} from './command.js'
import type {OutputSink, ScorerHandle} from './process.js'
import type {EnvVars} from '../config.js'

/** Where one scorer process listens: a Unix socket (preferred: no port to pick) or a port on 127.0.0.1. */
export type Endpoint =
  | {
      readonly kind: 'unix'
      readonly socketPath: string
      /** The worker's frame socket (the lean protocol, scorer/frame-dispatcher.ts), when it may have one. */
      readonly frameSocket?: string
    }
  | {readonly kind: 'tcp'; readonly port: number}

/** One scorer process to start: the index of its slot (0..workers-1) and the how-many-th start of that slot. */
export interface SlotInfo {
  readonly index: number
  readonly start: number
  /** A fresh Unix socket path for this start (its directory exists and belongs to mlserve). */
  readonly socketPath: string
  /** A free TCP port on 127.0.0.1, for scorers that cannot listen on a Unix socket. */
  readonly freePort: () => Promise<number>
}

export interface ScorerLaunch {
  readonly command: ScorerCommand
  readonly endpoint: Endpoint
}

/** What a backend that starts its scorers itself (the preload mode) needs to start a process. */
export interface StartIo {
  readonly baseEnv: EnvVars
  readonly cwd?: string
  readonly stdout: OutputSink
  readonly stderr: OutputSink
  /** Prefix of the process's output lines, e.g. "scorer 1". */
  readonly label: string
}

export interface StartedScorer {
  readonly process: ScorerHandle
  readonly endpoint: Endpoint
}

/** spawn: each scorer is a fresh interpreter that loads the model; preload: forked from one that loaded it. */
export type ScorerMode = 'spawn' | 'preload'

export interface Backend {
  readonly kind: 'pyfunc' | 'crate' | 'mlserver'
  /** What serves requests, for logs: "uvicorn", "gunicorn", "R httpuv", "mlserver". */
  readonly server: string
  /** The command that starts one scorer process for a slot (one process per slot: the supervisor runs N). */
  launch(slot: SlotInfo): Promise<ScorerLaunch>
  /** A GET on this path answers 200 once the scorer can serve (e.g. /ping). */
  readonly readyPath: string
  /** Responses mlserve gives itself, by exact path, for routes this scorer lacks (e.g. /version for crate). */
  readonly ownRoutes?: Readonly<Record<string, PlainResponse>>
  /** At most this many requests at once per process, whatever --max-concurrency says (1 for R's single thread). */
  readonly maxConcurrency?: number
  /** Paths forwarded to another path of the scorer (e.g. /health to /ping for crate). */
  readonly rewrites?: Readonly<Record<string, string>>
  /**
   * Why this kind's scorers cannot start any more, when a scorer exited 127 (command not found): e.g. the
   * model's environment was removed while serving. undefined when nothing is wrong with it.
   */
  readonly diagnoseExit?: () => Promise<string | undefined>
  /** Starts one scorer itself instead of handing the supervisor a command (the preload mode forks it). */
  readonly start?: (slot: SlotInfo, io: StartIo) => Promise<StartedScorer>
  /** How scorers are made now (the preload mode may fall back to spawn); undefined: spawn. */
  readonly mode?: () => ScorerMode
  /** Stops what the backend runs besides the scorers (the preload mode's loaded process). */
  readonly stop?: (graceMs: number, force?: AbortSignal) => Promise<void>
  /** Synchronous last resort: SIGKILL whatever the backend runs besides the scorers. */
  readonly killNow?: () => void
  /** The processes the backend runs besides the scorers (the preload mode's loaded process), for memory accounting. */
  readonly pids?: () => number[]
}
