// What one model may set for itself in a multi-model serve (--models entries, registry patterns there).
import type {EnvManager} from '../config.js'

/** What one model may set for itself (--models file); the rest comes from serve's flags. */
export interface ModelSettings {
  readonly workers?: number
  readonly timeoutSeconds?: number
  /** --batch for this model: true (serve's --batch-max-rows) or the most rows in one merged call; false: off. */
  readonly batch?: boolean | number
  readonly envManager?: EnvManager
  readonly installMlflow?: boolean
}
