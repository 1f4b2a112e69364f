import t from 'tap'

import {DEFAULT_RETRY_POLICY, isRetryableStatus, parseRetryAfter, retryDelayMs, retryPolicyFrom} from '../../../src/uri/retry.js'

t.test('retryable statuses', async (t) => {
  for (const status of [429, 500, 502, 503, 504]) t.ok(isRetryableStatus(status), String(status))
  for (const status of [200, 400, 401, 403, 404]) t.notOk(isRetryableStatus(status), String(status))
})

t.test('backoff doubles, Retry-After wins when longer, everything is capped', async (t) => {
  const policy = {...DEFAULT_RETRY_POLICY, jitter: 0}
  t.same(
    [1, 2, 3].map((n) => retryDelayMs(policy, n)),
    [1000, 2000, 4000],
  )
  t.equal(retryDelayMs(policy, 1, 5), 5000)
  t.equal(retryDelayMs(policy, 3, 1), 4000)
  t.equal(retryDelayMs(policy, 20), policy.maxDelayMs)
  t.equal(retryDelayMs(policy, 1, 3600), policy.maxDelayMs)
  t.equal(
    retryDelayMs({...policy, jitter: 0.5}, 1, undefined, () => 1),
    1500,
  )
})

t.test('Retry-After forms', async (t) => {
  t.equal(parseRetryAfter('3'), 3)
  t.equal(parseRetryAfter(undefined), undefined)
  t.equal(parseRetryAfter('soon'), undefined)
  t.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6)
})

t.test('policy from the environment: bounded defaults, MLFLOW_HTTP_REQUEST_* override', async (t) => {
  t.same(retryPolicyFrom({}), DEFAULT_RETRY_POLICY)
  t.equal(DEFAULT_RETRY_POLICY.maxRetries, 3, "not mlflow's 7: a CLI start must fail in seconds")
  t.match(retryPolicyFrom({MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0', MLFLOW_HTTP_REQUEST_TIMEOUT: '5', MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: '0.1'}), {
    maxRetries: 0,
    timeoutMs: 5000,
    backoffFactor: 0.1,
  })
  t.match(retryPolicyFrom({MLFLOW_HTTP_REQUEST_MAX_RETRIES: 'x', MLFLOW_HTTP_REQUEST_TIMEOUT: '0'}), {maxRetries: 3, timeoutMs: 30_000})
})
