// Serve's flags for following a moving model reference (@alias, a stage, latest).
import {Flags} from '@oclif/core'

export const reloadFlags = {
  'reload-interval': Flags.integer({
    env: 'MLSERVE_RELOAD_INTERVAL',
    default: 0,
    min: 0,
    summary:
      'Seconds between checks of a moving model reference (@alias, a stage, latest); a new version is switched in without downtime (0: off).',
    description:
      'Each check looks the reference up on the tracking server. A new version is downloaded, its environment prepared and -w new scorers warmed up beside the serving ones; then new requests go to them, requests in flight finish (up to --grace-period) and the old scorers stop. If anything fails, the old version serves on. SIGHUP checks at once (and reloads a local model directory).',
  }),
}
