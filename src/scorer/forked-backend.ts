// Several models with one scorer each: the scorer is a fork of its environment's loader (env-loader.ts)
// that loads the model and serves MLflow's app on its socket, so no process sits between them. Under the fast
// path it also answers frames on the socket spawn would give it (the lean protocol).
import type {Backend, ScorerMode, SlotInfo, StartedScorer} from './backend.js'
import type {ScorerHandle} from './process.js'

/**
 * `spawn`'s backend with each scorer forked (`serve`) instead of spawned; the supervisor pings it as ever.
 * Its endpoint is spawn's, so it speaks frames exactly when a spawned scorer of the model would.
 */
export function forkedBackend(
  spawn: Backend,
  serve: (socketPath: string, env: Record<string, string>, frameSocket?: string) => Promise<ScorerHandle>,
  env: Record<string, string>,
): Backend {
  return {
    ...spawn,
    mode: (): ScorerMode => 'preload',
    async start(slot: SlotInfo): Promise<StartedScorer> {
      const {endpoint} = await spawn.launch(slot)
      const frameSocket = endpoint.kind === 'unix' ? endpoint.frameSocket : undefined
      return {
        process: await serve(slot.socketPath, env, frameSocket),
        endpoint: {kind: 'unix', socketPath: slot.socketPath, ...(frameSocket ? {frameSocket} : {})},
      }
    },
  }
}
