// The REST retry policy (pure): which failures are retried, how often, and how long to wait between tries.
import type {EnvVars} from '../config.js'

export interface RetryPolicy {
  /** Retries after the first try (0: one try only). */
  readonly maxRetries: number
  /** Wait before retry n (1-based) is backoffFactor * 2^(n-1) seconds, capped at maxDelayMs. */
  readonly backoffFactor: number
  /** Up to this many seconds of random jitter are added to each wait. */
  readonly jitter: number
  readonly maxDelayMs: number
  /** Inactivity timeout of one request (headers, then each body chunk). */
  readonly timeoutMs: number
}

/**
 * mlflow's defaults (7 retries, factor 2, 120 s) can keep a CLI start waiting for minutes on a
 * server that is down. mlserve defaults to 3 retries with factor 1 (waits of about 1, 2 and 4 s),
 * 30 s of inactivity per request; the MLFLOW_HTTP_REQUEST_* variables still override each.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {maxRetries: 3, backoffFactor: 1, jitter: 0.5, maxDelayMs: 30_000, timeoutMs: 30_000}

const numberFrom = (value: string | undefined, fallback: number, min = 0): number => {
  const parsed = value === undefined || value.trim() === '' ? Number.NaN : Number(value)
  return Number.isFinite(parsed) && parsed >= min ? parsed : fallback
}

export function retryPolicyFrom(env: EnvVars): RetryPolicy {
  const d = DEFAULT_RETRY_POLICY
  return {
    maxRetries: Math.floor(numberFrom(env.MLFLOW_HTTP_REQUEST_MAX_RETRIES, d.maxRetries)),
    backoffFactor: numberFrom(env.MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, d.backoffFactor),
    jitter: numberFrom(env.MLFLOW_HTTP_REQUEST_BACKOFF_JITTER, d.jitter),
    maxDelayMs: d.maxDelayMs,
    timeoutMs: numberFrom(env.MLFLOW_HTTP_REQUEST_TIMEOUT, d.timeoutMs / 1000, 1) * 1000,
  }
}

/** 429 and 5xx are worth another try; other statuses answer the question. */
export const isRetryableStatus = (status: number): boolean => status === 429 || (status >= 500 && status <= 599)

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), if any. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim())
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000)
}

/** How long to wait before retry `attempt` (1-based); Retry-After wins when longer, all capped. */
export function retryDelayMs(policy: RetryPolicy, attempt: number, retryAfterSeconds?: number, random = Math.random): number {
  const backoff = policy.backoffFactor * 2 ** (attempt - 1) * 1000 + random() * policy.jitter * 1000
  const wanted = Math.max(backoff, (retryAfterSeconds ?? 0) * 1000)
  return Math.round(Math.min(wanted, policy.maxDelayMs))
}
