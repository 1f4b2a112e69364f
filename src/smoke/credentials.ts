// What `mlserve smoke --url` sends to prove who it is: the URL's user:password as Basic auth (a reverse
// proxy's), and an API key for mlserve's front door from --auth-token-file or MLSERVE_AUTH_TOKENS (never argv).
import {envTokens, readTokenFile} from '../proxy/auth.js'

/** Where smoke sends its requests and the headers each one carries. */
export interface Target {
  /** scheme://host:port, without credentials. */
  readonly origin: string
  readonly headers: Readonly<Record<string, string>>
}

/** The URL's credentials as an Authorization: Basic header (percent-escapes decoded, as browsers and curl do). */
export function basicAuthOf(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined
  const pair = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`
}

/**
 * The --url target: its origin, Basic auth from its user:password, and the API key (the first of
 * --auth-token-file, else of MLSERVE_AUTH_TOKENS) as X-API-Key, so both can go to one server.
 */
export async function targetOf(url: string, tokenFile: string | undefined, envValue: string | undefined): Promise<Target> {
  const parsed = new URL(url)
  const headers: Record<string, string> = {}
  const basic = basicAuthOf(parsed)
  if (basic) headers.authorization = basic
  const key = tokenFile === undefined ? envTokens(envValue)?.[0] : (await readTokenFile(tokenFile))[0]
  if (key !== undefined) headers['x-api-key'] = key
  return {origin: parsed.origin, headers}
}
