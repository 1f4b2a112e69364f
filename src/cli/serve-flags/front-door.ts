// The front door's serve flags (API keys, TLS, CORS, a path prefix), declared here and spread into serveFlags.
import {Flags} from '@oclif/core'

import type {EnvVars, FrontDoorOptions} from '../../config.js'
import {envTokens} from '../../proxy/auth.js'

/** The variable API keys can come from (comma-separated); never passed on to the scorers. */
export const AUTH_TOKENS_VARIABLE = 'MLSERVE_AUTH_TOKENS'

export const frontDoorFlags = {
  'auth-token-file': Flags.string({
    env: 'MLSERVE_AUTH_TOKEN_FILE',
    summary: `Require an API key on every route but /ping, /health, /livez, /readyz and the page /ui: one token per line in this file (mode 600; # comments), re-read on SIGHUP. ${AUTH_TOKENS_VARIABLE} (comma-separated) adds more.`,
    description:
      'A request sends its key as "Authorization: Bearer <token>" or "X-API-Key: <token>"; without a valid one it gets 401 with MLflow\'s error envelope (UNAUTHENTICATED) and WWW-Authenticate: Bearer. Keys are compared in constant time and never logged: the access log names a key by 8 hex digits of its SHA-256. A file that is missing, empty or readable by group or others fails the start (exit 31).',
  }),
  'metrics-public': Flags.boolean({
    default: false,
    summary: 'With API keys: /metrics answers without a key (for a Prometheus scraper).',
  }),
  'tls-cert': Flags.string({
    env: 'MLSERVE_TLS_CERT',
    summary: 'Serve HTTPS (HTTP/1.1) with this PEM certificate (chain); needs --tls-key. Re-read on SIGHUP.',
    description:
      'The certificate and key are parsed and matched before anything else starts (a bad or mismatched file: exit 32). SIGHUP reads them again; new connections get the new certificate and open ones are not dropped.',
  }),
  'tls-key': Flags.string({
    env: 'MLSERVE_TLS_KEY',
    summary: 'The PEM private key of --tls-cert (unencrypted). Re-read on SIGHUP.',
  }),
  'tls-client-ca': Flags.string({
    env: 'MLSERVE_TLS_CLIENT_CA',
    summary: 'Require client certificates (mTLS) signed by this PEM CA bundle; a client without one cannot connect.',
  }),
  'cors-origin': Flags.string({
    multiple: true,
    summary:
      'Allow browsers from this origin (repeatable; * for any): Access-Control-* headers on answers, preflight OPTIONS answered by mlserve.',
  }),
  'static-prefix': Flags.string({
    env: 'MLSERVE_STATIC_PREFIX',
    summary: 'Serve every route under this path (e.g. /p: /p/invocations, /p/ping, /p/metrics), for a path-routing ingress.',
  }),
}

export interface FrontDoorFlagValues {
  'auth-token-file'?: string
  'metrics-public': boolean
  'tls-cert'?: string
  'tls-key'?: string
  'tls-client-ca'?: string
  'cors-origin'?: string[]
  'static-prefix'?: string
}

/** The front door's flags and MLSERVE_AUTH_TOKENS as FrontDoorOptions. */
export function frontDoorOptionsFrom(flags: FrontDoorFlagValues, env: EnvVars): FrontDoorOptions {
  return {
    authTokenFile: flags['auth-token-file'],
    authTokens: envTokens(env[AUTH_TOKENS_VARIABLE]),
    metricsPublic: flags['metrics-public'],
    tlsCert: flags['tls-cert'],
    tlsKey: flags['tls-key'],
    tlsClientCa: flags['tls-client-ca'],
    corsOrigins: flags['cors-origin'],
    staticPrefix: flags['static-prefix'],
  }
}

/** The environment the scorers inherit: without the API keys. */
export function withoutTokens(env: EnvVars): EnvVars {
  if (env[AUTH_TOKENS_VARIABLE] === undefined) return env
  const {[AUTH_TOKENS_VARIABLE]: _dropped, ...rest} = env
  return rest
}
