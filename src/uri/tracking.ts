// Where models are looked up: the tracking and registry URIs (mlflow's defaults, spec 4.5) and the credentials sent.
import {readdir} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import type {EnvVars} from '../config.js'
import {MlserveError} from '../errors.js'
import {pathExists} from '../util/fs.js'
import {uriScheme} from './parse.js'
import {retryPolicyFrom, type RetryPolicy} from './retry.js'

export interface Tracking {
  readonly trackingUri: string
  readonly registryUri: string
  /** The Authorization header value, if credentials are set. Never logged. */
  readonly authorization?: string
  readonly insecureTls: boolean
  readonly retry: RetryPolicy
  readonly cwd: string
}

/** The store behind a tracking or registry URI: a REST server, a local file store, or anything the real client handles. */
export type StoreKind = 'rest' | 'file' | 'delegate'

export function storeKind(uri: string): StoreKind {
  if (/^databricks(-uc)?$/i.test(uri.trim())) return 'delegate'
  const scheme = uriScheme(uri)
  if (scheme === 'http' || scheme === 'https') return 'rest'
  if (scheme === undefined || scheme === 'file') return 'file'
  return 'delegate'
}

/** mlflow >= 3.7: ./mlruns if it holds a digit-named experiment with meta.yaml, else sqlite:///mlflow.db. */
export async function defaultTrackingUri(cwd: string): Promise<string> {
  const mlruns = path.join(cwd, 'mlruns')
  const names = await readdir(mlruns).catch(() => [] as string[])
  for (const name of names) {
    // eslint-disable-next-line no-await-in-loop
    if (/^\d+$/.test(name) && (await pathExists(path.join(mlruns, name, 'meta.yaml')))) return pathToFileURL(mlruns).href
  }

  return 'sqlite:///mlflow.db'
}

/** The file a sqlite:/// URI names (relative to cwd; sqlite://// is absolute), undefined for any other URI or :memory:. */
export function sqliteFileOf(uri: string, cwd: string): string | undefined {
  const match = /^sqlite:\/\/\/([^?]*)/i.exec(uri.trim())
  if (!match || match[1] === '' || match[1] === ':memory:') return undefined
  return path.resolve(cwd, decodeURIComponent(match[1]!))
}

/**
 * Fails, before any Python runs, when there is no store to look a runs:/ or models:/ URI up in: the
 * mlflow client would create an empty sqlite database and then report the model missing.
 */
export function requireStore(tracking: Tracking, env: EnvVars): void {
  const pointAt = [
    'Point at your store: export MLFLOW_TRACKING_URI=sqlite:////absolute/path/to/mlflow.db (a local store), or =http://host:5000 (a tracking server).',
    'Or run mlserve from the directory that holds your mlruns/ or mlflow.db.',
  ]
  for (const [variable, uri] of [
    ['MLFLOW_TRACKING_URI', tracking.trackingUri],
    ['MLFLOW_REGISTRY_URI', tracking.registryUri],
  ] as const) {
    const file = sqliteFileOf(uri, tracking.cwd)
    if (file === undefined || existsSync(file)) continue
    if (!env.MLFLOW_TRACKING_URI?.trim() && !env.MLFLOW_REGISTRY_URI?.trim()) {
      throw new MlserveError(
        'NO_TRACKING_STORE',
        `No tracking store to look the model up in: MLFLOW_TRACKING_URI is not set, and there is no ./mlruns and no ./mlflow.db in ${tracking.cwd}.`,
        {suggestions: pointAt},
      )
    }

    throw new MlserveError(
      'NO_TRACKING_STORE',
      `${variable}=${redactUri(uri)} names ${file}: no such file (mlserve never creates an empty store).`,
      {
        suggestions: pointAt,
      },
    )
  }
}

const truthy = (value: string | undefined): boolean => ['true', '1', 'yes', 'on'].includes((value ?? '').trim().toLowerCase())

/** Basic (username + password) wins over Bearer (token), as in mlflow. */
export function authorizationFrom(env: EnvVars): string | undefined {
  const user = env.MLFLOW_TRACKING_USERNAME
  const password = env.MLFLOW_TRACKING_PASSWORD
  if (user && password) return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
  if (env.MLFLOW_TRACKING_TOKEN) return `Bearer ${env.MLFLOW_TRACKING_TOKEN}`
  return undefined
}

export async function trackingFrom(env: EnvVars, cwd: string): Promise<Tracking> {
  const trackingUri = env.MLFLOW_TRACKING_URI?.trim() || (await defaultTrackingUri(cwd))
  return {
    trackingUri,
    registryUri: env.MLFLOW_REGISTRY_URI?.trim() || trackingUri,
    authorization: authorizationFrom(env),
    insecureTls: truthy(env.MLFLOW_TRACKING_INSECURE_TLS),
    retry: retryPolicyFrom(env),
    cwd,
  }
}

/**
 * A URI with any user:password@ removed: the one redaction of every place mlserve writes a model URI or
 * a URL (messages, logs, /readyz, image labels, manifests, smoke reports). The userinfo ends at the last
 * @ of the authority (a password may hold an @).
 */
export const redactUri = (uri: string): string => uri.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1***@')

/** Text (a child's stderr, a message) with the userinfo of every URI in it replaced by ***. */
export const redactText = (text: string): string => text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s'"]*@/gi, '$1***@')

/**
 * A URL's own credentials (`https://user:password@host/...`): the URL without them, and the Basic
 * Authorization header they stand for (undefined when the URL has none).
 */
export function credentialsOf(url: string): {url: string; authorization?: string} {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return {url}
  }

  if (parsed.username === '' && parsed.password === '') return {url}
  const user = decodeURIComponent(parsed.username)
  const password = decodeURIComponent(parsed.password)
  parsed.username = ''
  parsed.password = ''
  return {url: parsed.href, authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`}
}
