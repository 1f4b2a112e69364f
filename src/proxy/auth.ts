// API keys: the tokens (--auth-token-file, MLSERVE_AUTH_TOKENS), compared in constant time, named by a short hash.
import {createHash, timingSafeEqual} from 'node:crypto'
import {readFile, stat} from 'node:fs/promises'
import type {IncomingMessage} from 'node:http'

import {MlserveError} from '../errors.js'
import {errorEnvelope, type PlainResponse} from './responses.js'

/** A token file larger than this is not a list of keys. */
const TOKEN_FILE_MAX_BYTES = 1024 * 1024

/** Routes that answer without a token: health checks for load balancers and orchestrators. */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/ping', '/health', '/livez', '/readyz'])

const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()

/** What the access log says of a token: 8 hex digits of its SHA-256, enough to find a leaked key, never the key. */
export const tokenId = (token: string): string => sha256(token).toString('hex').slice(0, 8)

/** The tokens of a file: one per line, blank lines and `#` comments skipped, surrounding spaces trimmed. */
export function parseTokens(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
}

const invalid = (message: string, suggestion: string) => new MlserveError('AUTH_TOKENS_INVALID', message, {suggestions: [suggestion]})

/** Reads --auth-token-file: a regular file, private to its owner (mode 600 or stricter), with at least one token. */
export async function readTokenFile(file: string): Promise<string[]> {
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw invalid(
      `The --auth-token-file ${file} cannot be read: ${error.code ?? error.message}.`,
      'Name an existing file holding one token per line.',
    )
  })
  if (!info.isFile()) throw invalid(`The --auth-token-file ${file} is not a regular file.`, 'Name a file holding one token per line.')
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8)
    throw invalid(
      `The --auth-token-file ${file} is readable by others (mode ${mode}): anyone on this machine could read the keys.`,
      `Run: chmod 600 ${file}`,
    )
  }

  if (info.size > TOKEN_FILE_MAX_BYTES) throw invalid(`The --auth-token-file ${file} is larger than 1 MiB.`, 'Keep one token per line in it.')
  const tokens = parseTokens(await readFile(file, 'utf8'))
  if (tokens.length === 0)
    throw invalid(`The --auth-token-file ${file} holds no token (only blank lines or comments).`, 'Put one token per line in it.')
  return tokens
}

/** MLSERVE_AUTH_TOKENS: comma-separated; set but holding no token is an error, not "no authentication". */
export function envTokens(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  const tokens = value
    .split(',')
    .map((token) => token.trim())
    .filter(Boolean)
  if (tokens.length === 0) throw invalid('MLSERVE_AUTH_TOKENS is set but holds no token.', 'Set it to comma-separated tokens, or unset it.')
  return tokens
}

/** The token a request presents: `Authorization: Bearer <token>` or `X-API-Key: <token>`. */
export function presentedToken(req: IncomingMessage): string | undefined {
  const authorization = req.headers.authorization
  if (authorization) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization)
    if (match) return match[1]
  }

  const key = req.headers['x-api-key']
  return typeof key === 'string' && key !== '' ? key.trim() : undefined
}

/** The accepted tokens, kept only as SHA-256 digests; replace() swaps them at once (SIGHUP). */
export class Keyring {
  private digests: readonly Buffer[] = []

  constructor(tokens: readonly string[]) {
    this.replace(tokens)
  }

  get size(): number {
    return this.digests.length
  }

  replace(tokens: readonly string[]): void {
    this.digests = [...new Set(tokens)].map((token) => sha256(token))
  }

  /**
   * Whether `token` is one of the keys. Every digest is compared, each with timingSafeEqual over
   * fixed-length hashes, so the time taken says nothing of how much of a key was right.
   */
  accepts(token: string | undefined): boolean {
    return this.check(token).accepted
  }

  /** accepts(), and the key's id for the access log (tokenId), from one digest. */
  check(token: string | undefined): {readonly accepted: boolean; readonly id?: string} {
    const digest = sha256(token ?? '')
    let found = false
    for (const known of this.digests) found = timingSafeEqual(known, digest) || found
    return token === undefined ? {accepted: false} : {accepted: found, id: digest.toString('hex', 0, 4)}
  }
}

/** The 401: MLflow's error envelope, and the scheme to use. */
export function unauthenticatedResponse(presented: boolean): PlainResponse {
  const message = presented
    ? 'The API key is not valid for this server.'
    : 'This server requires an API key: send "Authorization: Bearer <token>" or "X-API-Key: <token>".'
  return {...errorEnvelope(401, 'UNAUTHENTICATED', message, {'www-authenticate': 'Bearer'}), refusal: 'unauthenticated'}
}
