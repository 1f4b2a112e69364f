// The tracking server over REST (undici): auth headers, bounded retries with backoff, timeouts, errors as MlserveErrors.
import {createWriteStream} from 'node:fs'
import {pipeline} from 'node:stream/promises'

import {Agent, request, type Dispatcher} from 'undici'

import {MlserveError, messageOf} from '../errors.js'
import {sleep} from '../util/abort.js'
import {isRetryableStatus, parseRetryAfter, retryDelayMs} from './retry.js'
import {credentialsOf, redactUri, type Tracking} from './tracking.js'

/** What a non-2xx JSON answer said; kept as the `cause` of TRACKING_REQUEST_FAILED. */
export interface RestFailure {
  readonly status: number
  readonly errorCode?: string
  readonly message: string
}

export const restFailureOf = (error: unknown): RestFailure | undefined =>
  error instanceof MlserveError && error.code === 'TRACKING_REQUEST_FAILED' ? (error.cause as RestFailure | undefined) : undefined

/** Errors of writing a download to this machine's disk, told apart from the network's. */
const localFailures = new WeakSet<Error>()

type Query = Readonly<Record<string, string | readonly string[] | undefined>>

export class RestClient {
  readonly #agent: Agent
  readonly #tracking: Tracking
  readonly #signal?: AbortSignal

  constructor(tracking: Tracking, signal?: AbortSignal) {
    this.#tracking = tracking
    this.#signal = signal
    const timeout = tracking.retry.timeoutMs
    this.#agent = new Agent({
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connect: {timeout: Math.min(timeout, 10_000), rejectUnauthorized: !tracking.insecureTls},
    })
  }

  /** GET `<base>/api/2.0/<endpoint>?query`, JSON answer. */
  async get<T>(base: string, endpoint: string, query: Query = {}): Promise<T> {
    const url = new URL(`${base.replace(/\/+$/, '')}/api/2.0/${endpoint}`)
    for (const [key, value] of Object.entries(query)) {
      for (const item of typeof value === 'string' ? [value] : (value ?? [])) url.searchParams.append(key, item)
    }

    return this.#json<T>(url.href, 'GET')
  }

  /** POST `<base>/api/2.0/<endpoint>` with a JSON body, JSON answer. */
  async post<T>(base: string, endpoint: string, body: unknown): Promise<T> {
    return this.#json<T>(`${base.replace(/\/+$/, '')}/api/2.0/${endpoint}`, 'POST', JSON.stringify(body))
  }

  /**
   * Streams the body of GET `url` into `file` (truncated on each try). A failure to write the file (a full
   * disk, a quota, a read-only cache) is thrown as it is, at once: no retry helps, and the server is not to blame.
   */
  async download(url: string, file: string): Promise<void> {
    await this.#withRetries(url, 'GET', undefined, async (body) => {
      const out = createWriteStream(file)
      out.once('error', (error) => localFailures.add(error))
      await pipeline(body, out)
    })
  }

  async close(): Promise<void> {
    await this.#agent.close()
  }

  async #json<T>(url: string, method: 'GET' | 'POST', body?: string): Promise<T> {
    return this.#withRetries(url, method, body, async (stream) => {
      const text = await stream.text()
      try {
        return (text.trim() === '' ? {} : JSON.parse(text)) as T
      } catch (error) {
        throw new MlserveError('TRACKING_REQUEST_FAILED', `The tracking server answered ${redactUri(url)} with a body that is not JSON.`, {
          cause: {status: 200, message: text.slice(0, 200)} satisfies RestFailure,
        })
      }
    })
  }

  async #withRetries<T>(
    url: string,
    method: 'GET' | 'POST',
    body: string | undefined,
    read: (body: Dispatcher.ResponseData['body']) => Promise<T>,
  ): Promise<T> {
    const policy = this.#tracking.retry
    const headers: Record<string, string> = {'user-agent': 'mlserve'}
    if (body !== undefined) headers['content-type'] = 'application/json'
    // user:password@ in an artifact URI is sent as Basic auth (what the user meant), never in the URL itself.
    const own = credentialsOf(url)
    const authorization = own.authorization ?? this.#tracking.authorization
    if (authorization) headers.authorization = authorization
    const shown = redactUri(url.split('?')[0]!)
    url = own.url
    for (let attempt = 0; ; attempt++) {
      this.#signal?.throwIfAborted()
      let retryAfter: number | undefined
      let failure: MlserveError
      try {
        // eslint-disable-next-line no-await-in-loop
        const response = await request(url, {method, headers, body, dispatcher: this.#agent, signal: this.#signal})
        if (response.statusCode >= 200 && response.statusCode < 300) {
          // eslint-disable-next-line no-await-in-loop
          return await read(response.body)
        }

        // eslint-disable-next-line no-await-in-loop
        const text = await response.body.text().catch(() => '')
        failure = httpFailure(response.statusCode, text, shown)
        if (!isRetryableStatus(response.statusCode)) throw failure
        const header = response.headers['retry-after']
        retryAfter = parseRetryAfter(Array.isArray(header) ? header[0] : header)
      } catch (error) {
        if (this.#signal?.aborted || (error instanceof Error && localFailures.has(error))) throw error
        if (error instanceof MlserveError) {
          if (error.code !== 'TRACKING_REQUEST_FAILED' || !isRetryableStatus((error.cause as RestFailure | undefined)?.status ?? 0)) {
            throw error
          }

          failure = error
        } else {
          failure = new MlserveError(
            'TRACKING_UNREACHABLE',
            `Cannot reach the MLflow tracking server at ${shown}: ${connectionMessage(error)}`,
            {
              cause: error,
              suggestions: [
                'Check MLFLOW_TRACKING_URI and that the server is running (GET /health).',
                'Retries and timeouts: MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT.',
              ],
            },
          )
        }
      }

      if (attempt >= policy.maxRetries) {
        if (policy.maxRetries === 0) throw failure
        throw new MlserveError(failure.code, `${failure.message} (after ${attempt + 1} tries)`, {
          cause: failure.cause,
          suggestions: failure.suggestions,
        })
      }

      // eslint-disable-next-line no-await-in-loop
      await sleep(retryDelayMs(policy, attempt + 1, retryAfter), this.#signal)
    }
  }
}

function connectionMessage(error: unknown): string {
  const code = (error as {code?: string}).code
  const cause = (error as {cause?: {code?: string; message?: string}}).cause
  const detail = cause?.code ?? code
  return detail ? `${detail} (${messageOf(error)})` : messageOf(error)
}

function httpFailure(status: number, text: string, url: string): MlserveError {
  let errorCode: string | undefined
  let message = text.trim().slice(0, 500)
  try {
    const parsed = JSON.parse(text) as {error_code?: string; message?: string}
    errorCode = parsed.error_code
    message = parsed.message ?? message
  } catch {}

  if (status === 401) {
    return new MlserveError('TRACKING_UNAUTHENTICATED', `The tracking server refused the credentials (401 Unauthorized) for ${url}.`, {
      suggestions: ['Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN.'],
    })
  }

  if (status === 403) {
    return new MlserveError('TRACKING_FORBIDDEN', `The tracking server denied access (403 Forbidden) to ${url}.`, {
      suggestions: ['The credentials are valid but lack permission for this experiment or registered model.'],
    })
  }

  const cause: RestFailure = {status, errorCode, message}
  return new MlserveError(
    'TRACKING_REQUEST_FAILED',
    errorCode ? `${errorCode}: ${message}` : `The tracking server answered ${status} for ${url}: ${message}`,
    {cause},
  )
}
