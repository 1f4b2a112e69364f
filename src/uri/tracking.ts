// Where models are looked up: the tracking and registry URIs (mlflow's defaults, spec 4.5) and the credentials sent.
import {readdir} from 'node:fs/promises'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import type {EnvVars} from '../config.js'
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

/** A URI with any user:password@ removed, for messages and logs. */
export const redactUri = (uri: string): string => uri.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@')

/** Text (a child's stderr, a message) with the userinfo of every URI in it replaced by ***. */
export const redactText = (text: string): string => text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/@\s'"]*@/gi, '$1***@')

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
