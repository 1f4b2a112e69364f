import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {cachedModel} from '../../../src/uri/model-cache.js'
import {downloadWithMlflow} from '../../../src/uri/python-client.js'
import {RestClient} from '../../../src/uri/rest.js'
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

t.test('a full disk while downloading is not retried nor blamed on the server: the cache directory is named', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-enospc-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  let requests = 0
  const server = createServer((request, response) => {
    requests++
    response.end('x'.repeat(64 * 1024))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/get-artifact`
  const retry = {...DEFAULT_RETRY_POLICY, backoffFactor: 0, jitter: 0}
  const client = new RestClient({trackingUri: url, registryUri: url, insecureTls: false, retry, cwd: dir})
  t.teardown(() => client.close())
  const root = path.join(dir, 'models')
  // Writing to /dev/full fails with ENOSPC, as a full disk does.
  const download = cachedModel({
    env: {MLSERVE_MODEL_ROOT: root},
    source: 'runs:/r1/model',
    stores: [],
    download: () => client.download(url, '/dev/full'),
  })
  await t.rejects(download, {
    code: 'CACHE_IO_FAILED',
    exitCode: 72,
    message: `Could not write to ${root}: no space left on the device [ENOSPC]`,
    suggestions: [/^Free space on the file system that holds .*MLSERVE_MODEL_ROOT/],
  })
  t.equal(requests, 1, 'one try: a retry cannot free the disk')
  t.same(
    readdirSync(root).filter((name) => !name.endsWith('.lock')),
    [],
    'nothing half-downloaded kept',
  )
})

t.test("a full disk under the mlflow client (s3, sqlite stores...) is the cache directory's error too", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-enospc-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  // A stand-in for `python -m mlflow artifacts download -u URI -d DIR` failing as Python does on a full disk.
  const python = path.join(dir, 'python')
  writeFileSync(
    python,
    `#!/bin/sh\necho 'Traceback (most recent call last):' >&2\necho "OSError: [Errno 28] No space left on device: '$8/model.pkl'" >&2\nexit 1\n`,
    {mode: 0o755},
  )
  const tracking = {trackingUri: 'sqlite:///x.db', registryUri: 'sqlite:///x.db', insecureTls: false, retry: DEFAULT_RETRY_POLICY, cwd: dir}
  const root = path.join(dir, 'models')
  const download = cachedModel({
    env: {MLSERVE_MODEL_ROOT: root},
    source: 's3://bucket/model',
    stores: [],
    download: (into) => downloadWithMlflow({python, env: {}, tracking}, 's3://bucket/model', into),
  })
  await t.rejects(download, {
    code: 'CACHE_IO_FAILED',
    message: new RegExp(`^Could not write to ${root}: no space left on the device \\[ENOSPC\\] \\(write ${root}/.*model\\.pkl\\)\\.$`),
  })
})
