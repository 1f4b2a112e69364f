// The options object that flows from the CLI flags down through every stage.

export const ENV_MANAGERS = ['local', 'virtualenv', 'uv', 'conda'] as const
export type EnvManager = (typeof ENV_MANAGERS)[number]

/** Where the model comes from and which Python environment serves it: shared by serve and predict. */
export interface ModelOptions {
  readonly modelUri: string
  readonly envManager: EnvManager
  readonly installMlflow: boolean
  /** The interpreter the `local` manager uses (a path or a name on PATH). */
  readonly python: string
  /** The directory relative model paths are resolved against. */
  readonly cwd: string
  /** The environment children inherit (before mlserve adds its own variables). */
  readonly env: Readonly<Record<string, string | undefined>>
}

export interface ServeOptions extends ModelOptions {
  readonly host: string
  /** 0 picks a free port; the chosen one is logged. */
  readonly port: number
  readonly timeoutSeconds: number
  readonly workers: number
  readonly enableMlserver: boolean
  /** How long in-flight requests may take to finish after SIGINT/SIGTERM. */
  readonly gracePeriodMs: number
}

export interface PredictOptions extends ModelOptions {
  readonly inputPath?: string
  readonly outputPath?: string
  readonly contentType: 'json' | 'csv'
  /** Extra KEY=VALUE variables for the prediction process. */
  readonly extraEnv: Readonly<Record<string, string>>
}

/** `--no-conda` forces the local manager, as in mlflow. */
export function effectiveEnvManager(envManager: EnvManager, noConda: boolean): EnvManager {
  return noConda ? 'local' : envManager
}
