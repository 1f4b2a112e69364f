// Serve's flags and the mapping from them to ServeOptions, declared once: serve uses them as they are;
// smoke, generate-k8s, build-docker and prepare-env derive theirs from these. Each group of flags is a
// file in serve-flags/; this is their order in the help and the flag reference.

import type {LogFormat, RScorer, ServeOptions} from '../config.js'
import {modelFlags, modelOptionsFrom, type ModelFlagValues} from './flags.js'
import {batchingFlags} from './serve-flags/batching.js'
import {frontDoorFlags, frontDoorOptionsFrom, withoutTokens, type FrontDoorFlagValues} from './serve-flags/front-door.js'
import {loggingFlags} from './serve-flags/logging.js'
import {reloadFlags} from './serve-flags/reload.js'
import {scorersFlags} from './serve-flags/scorers.js'
import {serverFlags} from './serve-flags/server.js'
import {multiModelFlags} from './serve-flags/multi-model.js'

/**
 * Every flag's help shows its default: oclif prints `[default: X]` except for booleans and falsy values,
 * so those say theirs in the summary (on/off, 0).
 */
function showDefaults<T extends Record<string, {type: string; default?: unknown; summary?: string}>>(flags: T): T {
  const shown: Record<string, unknown> = {}
  for (const [name, flag] of Object.entries(flags)) {
    const hidden = flag.type === 'boolean' ? (flag.default ? 'on' : 'off') : flag.default === 0 ? '0' : undefined
    shown[name] = hidden === undefined ? flag : {...flag, summary: `${flag.summary ?? ''} Default: ${hidden}.`}
  }

  return shown as T
}

export const serveFlags = showDefaults({
  ...modelFlags,
  port: serverFlags.port,
  host: serverFlags.host,
  timeout: serverFlags.timeout,
  workers: scorersFlags.workers,
  preload: scorersFlags.preload,
  'fast-path': scorersFlags['fast-path'],
  'enable-mlserver': scorersFlags['enable-mlserver'],
  'grace-period': serverFlags['grace-period'],
  'max-body-size': serverFlags['max-body-size'],
  'max-concurrency': scorersFlags['max-concurrency'],
  'max-queue': scorersFlags['max-queue'],
  'max-streams': serverFlags['max-streams'],
  'header-timeout': serverFlags['header-timeout'],
  'body-timeout': serverFlags['body-timeout'],
  'timeout-grace': scorersFlags['timeout-grace'],
  'liveness-interval': scorersFlags['liveness-interval'],
  'load-timeout': scorersFlags['load-timeout'],
  warmup: scorersFlags.warmup,
  'access-log': loggingFlags['access-log'],
  'log-format': loggingFlags['log-format'],
  batch: batchingFlags.batch,
  'batch-max-rows': batchingFlags['batch-max-rows'],
  'batch-wait': batchingFlags['batch-wait'],
  'reload-interval': reloadFlags['reload-interval'],
  'r-scorer': scorersFlags['r-scorer'],
  ...frontDoorFlags,
  ...multiModelFlags,
})

/** The values `this.parse` gives for serveFlags. */
export interface ServeFlagValues extends ModelFlagValues, FrontDoorFlagValues {
  port: number
  host: string
  timeout: number
  workers: number
  preload: boolean
  'fast-path': boolean
  'enable-mlserver': boolean
  'grace-period': number
  'max-body-size': number
  'max-concurrency': number
  'max-queue': number
  'max-streams': number
  'header-timeout': number
  'body-timeout': number
  'timeout-grace': number
  'liveness-interval': number
  'load-timeout': number
  warmup: boolean
  'access-log': boolean
  'log-format': LogFormat
  batch: boolean
  'batch-max-rows': number
  'batch-wait': number
  'reload-interval': number
  'r-scorer': RScorer
}

/** Serve's flags as ServeOptions (seconds and MiB become milliseconds and bytes). */
export function serveOptionsFrom(flags: ServeFlagValues): ServeOptions {
  const model = modelOptionsFrom(flags)
  return {
    ...model,
    env: withoutTokens(model.env),
    frontDoor: frontDoorOptionsFrom(flags, model.env),
    host: flags.host,
    port: flags.port,
    timeoutSeconds: flags.timeout,
    workers: flags.workers,
    preload: flags.preload,
    fastPath: flags['fast-path'],
    enableMlserver: flags['enable-mlserver'],
    gracePeriodMs: flags['grace-period'] * 1000,
    maxBodyBytes: flags['max-body-size'] * 1024 * 1024,
    maxConcurrency: flags['max-concurrency'],
    maxQueue: flags['max-queue'],
    maxStreams: flags['max-streams'],
    headerTimeoutMs: flags['header-timeout'] * 1000,
    bodyTimeoutMs: flags['body-timeout'] * 1000,
    timeoutGraceMs: flags['timeout-grace'] * 1000,
    livenessIntervalMs: flags['liveness-interval'] * 1000,
    loadTimeoutMs: flags['load-timeout'] * 1000,
    warmup: flags.warmup,
    accessLog: flags['access-log'],
    logFormat: flags['log-format'],
    rScorer: flags['r-scorer'],
    batchMaxRows: flags.batch ? flags['batch-max-rows'] : 0,
    batchWaitMs: flags['batch-wait'],
    reloadIntervalMs: flags['reload-interval'] * 1000,
  }
}

/** Every serve flag's default (the model URI aside), as `this.parse` gives them when none is set. */
export function serveFlagDefaults(): Omit<ServeFlagValues, 'model-uri'> {
  const values: Record<string, unknown> = {}
  for (const [name, flag] of Object.entries(serveFlags)) if (flag.default !== undefined) values[name] = flag.default
  return values as unknown as Omit<ServeFlagValues, 'model-uri'>
}
