// Several models with one scorer each: the scorer is a fork of its environment's loader (env-loader.ts)
// that loads the model and serves MLflow's app on its socket, so no process sits between them.
import type {Backend, ScorerMode, SlotInfo, StartedScorer} from './backend.js'
import type {ScorerHandle} from './process.js'

/** `spawn`'s backend with each scorer forked (`serve`) instead of spawned; the supervisor pings it as ever. */
export function forkedBackend(
  spawn: Backend,
  serve: (socketPath: string, env: Record<string, string>) => Promise<ScorerHandle>,
  env: Record<string, string>,
): Backend {
  return {
    ...spawn,
    mode: (): ScorerMode => 'preload',
    async start(slot: SlotInfo): Promise<StartedScorer> {
      return {process: await serve(slot.socketPath, env), endpoint: {kind: 'unix', socketPath: slot.socketPath}}
    },
  }
}
