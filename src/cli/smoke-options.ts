// The options smoke starts the model with: serve's defaults and declarations, with smoke's few overrides.
import type {ServeOptions} from '../config.js'
import type {ModelFlagValues} from './flags.js'
import {serveFlagDefaults, serveOptionsFrom, type ServeFlagValues} from './serve-flags.js'

/** The serve flags smoke has too (same declarations). */
export type SmokeServeFlagValues = ModelFlagValues & Pick<ServeFlagValues, 'timeout' | 'load-timeout' | 'enable-mlserver'>

/**
 * What smoke starts: serve's defaults (never MLSERVE_* from the environment) with its own flags, on a free
 * port of 127.0.0.1 with one scorer, a short drain and no access log (its output is the report).
 */
export function smokeServeOptions(flags: SmokeServeFlagValues): ServeOptions {
  return {
    ...serveOptionsFrom({...serveFlagDefaults(), ...flags}),
    host: '127.0.0.1',
    port: 0,
    workers: 1,
    gracePeriodMs: 5000,
    accessLog: false,
    logFormat: 'text',
  }
}
