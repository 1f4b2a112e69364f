// The checks of `mlserve smoke` against a ready server: health, the input example, the user's cases, bad
// input, and the output schema; each becomes one CaseResult with its duration.
import {Agent} from 'undici'

import {messageOf} from '../errors.js'
import type {SmokeCase} from './cases.js'
import {checkPredictions, show} from './conform.js'
import type {CaseResult} from './report.js'
import {CheckFailure, CheckSkipped, checkEvents, excerptOf, predictionsOf, sameValue} from './responses.js'
import {missingColumnBody, sampleBody} from './sample.js'
import type {Signature} from './signature.js'
import {pathPrefixOf} from './model-route.js'

/** What the checks know about the model: its signature and serving input example, when it has them. */
export interface ModelFacts {
  readonly signature?: Signature
  readonly example?: {readonly body: Buffer; readonly source: string}
  /** MLmodel says the model implements predict_stream: the example is also sent with "stream": true. */
  readonly streamable?: boolean
}

export interface CheckOptions {
  readonly url: string
  /** Sent with every request (--url: the URL's credentials, the API key). */
  readonly headers?: Readonly<Record<string, string>>
  /** Undefined with --url and no -m. */
  readonly model?: ModelFacts
  readonly cases: readonly SmokeCase[]
  /** Per request. */
  readonly timeoutMs: number
  /** Aborts the checks (Ctrl-C): the running one fails, the rest are skipped. */
  readonly signal: AbortSignal
  /** Called as each case ends (for progress on stderr). */
  readonly onCase?: (result: CaseResult) => void
}

interface Response {
  readonly status: number
  readonly text: string
}

const NO_EXAMPLE_HINT = [
  'The model has no serving input example and no signature, and no --cases were given: this smoke test would never call predict.',
  'Log the model with an input example (mlflow.<flavor>.log_model(..., input_example=...)), which also gives it a signature,',
  'or pass --cases FILE with at least one request.',
].join('\n')

/** Runs the checks in order against the server at `options.url`: one CaseResult each. */
export async function runChecks(options: CheckOptions): Promise<CaseResult[]> {
  // A little longer than the server's own --timeout, so that its 504 arrives first.
  const limit = options.timeoutMs + 5000
  const agent = new Agent({headersTimeout: limit, bodyTimeout: limit, pipelining: 0})
  const origin = new URL(options.url).origin
  // --model NAME: every route under /models/<name> (see model-route.ts).
  const prefix = pathPrefixOf(options.url)
  const results: CaseResult[] = []
  /** The predictions of every case that got a 200, for the output schema check. */
  const predicted: Array<{readonly name: string; readonly text: string}> = []

  const call = async (
    method: 'GET' | 'POST',
    path: string,
    body?: {readonly data: Buffer | string; readonly contentType: string},
  ): Promise<Response> => {
    try {
      const response = await agent.request({
        origin,
        path: prefix + path,
        method,
        headers: body ? {...options.headers, 'content-type': body.contentType} : {...options.headers},
        body: body?.data,
        signal: options.signal,
      })
      return {status: response.statusCode, text: await response.body.text()}
    } catch (error) {
      if (options.signal.aborted) throw error
      throw new CheckFailure(`${method} ${path} got no response: ${messageOf(error)}`)
    }
  }

  const run = async (name: string, check: () => Promise<string | void>) => {
    if (options.signal.aborted) {
      results.push({name, status: 'skipped', durationMs: 0, message: 'interrupted'})
      options.onCase?.(results.at(-1)!)
      return
    }

    const start = performance.now()
    let result: CaseResult
    try {
      const detail = await check()
      result = {name, status: 'passed', durationMs: performance.now() - start, message: detail || undefined}
    } catch (error) {
      const durationMs = performance.now() - start
      if (error instanceof CheckSkipped) result = {name, status: 'skipped', durationMs: 0, message: error.message}
      else if (options.signal.aborted) result = {name, status: 'failed', durationMs, message: 'interrupted'}
      else if (error instanceof CheckFailure) result = {name, status: 'failed', durationMs, message: error.message, excerpt: error.excerpt}
      else result = {name, status: 'failed', durationMs, message: messageOf(error)}
    }

    results.push(result)
    options.onCase?.(result)
  }

  const expectStatus = (what: string, response: Response, status: number) => {
    if (response.status !== status)
      throw new CheckFailure(`${what}: expected status ${status}, got ${response.status}`, excerptOf(response.text))
  }

  const predict = async (what: string, data: Buffer | string, contentType = 'application/json') => {
    const response = await call('POST', '/invocations', {data, contentType})
    expectStatus(what, response, 200)
    predicted.push({name: what, text: response.text})
    return response
  }

  const {model, cases} = options
  const inputs = model?.signature?.inputs
  const outputs = model?.signature?.outputs

  try {
    await run('health', async () => {
      expectStatus('GET /ping', await call('GET', '/ping'), 200)
      expectStatus('GET /version', await call('GET', '/version'), 200)
    })

    await run('input example', async () => {
      if (model?.example) {
        await predict('input example', model.example.body)
        return model.example.source
      }

      const body = inputs ? sampleBody(inputs) : undefined
      if (body) {
        await predict('input example', body)
        return 'one row built from the signature (the model has no serving input example)'
      }

      if (cases.length > 0) throw new CheckSkipped('the model has no serving input example and no signature; the --cases call predict')
      throw new CheckFailure(model ? NO_EXAMPLE_HINT : `${NO_EXAMPLE_HINT}\nWith --url, pass -m to read the model's example and signature.`)
    })

    if (model?.streamable) {
      await run('stream', async () => {
        let document: unknown
        try {
          document = model.example ? JSON.parse(model.example.body.toString('utf8')) : undefined
        } catch {}

        if (typeof document !== 'object' || document === null || Array.isArray(document)) {
          throw new CheckSkipped('the model has no serving input example that is a JSON object to stream')
        }

        const response = await call('POST', '/invocations', {data: JSON.stringify({...document, stream: true}), contentType: 'application/json'})
        expectStatus('the input example with "stream": true', response, 200)
        return `${checkEvents(response.text)} event(s), then [DONE]`
      })
    }

    for (const smokeCase of cases) {
      // eslint-disable-next-line no-await-in-loop
      await run(smokeCase.name, async () => {
        const response = await call('POST', '/invocations', {data: smokeCase.body, contentType: smokeCase.contentType})
        const {expect} = smokeCase
        expectStatus(smokeCase.name, response, expect.status)
        if (response.status === 200) predicted.push({name: smokeCase.name, text: response.text})
        if (expect.predictions !== undefined) {
          let got: unknown
          try {
            got = predictionsOf(response.text)
          } catch {
            throw new CheckFailure(
              `expected predictions ${show(expect.predictions, 400)}, got a body that is not JSON`,
              excerptOf(response.text),
            )
          }

          if (!sameValue(expect.predictions, got, expect.tolerance)) {
            const within = expect.tolerance ? ` (tolerance ${expect.tolerance})` : ''
            throw new CheckFailure(`expected predictions ${show(expect.predictions, 400)}${within}\n     got predictions ${show(got, 400)}`)
          }
        }

        if (expect.contains !== undefined && !response.text.includes(expect.contains)) {
          throw new CheckFailure(`expected the body to contain ${JSON.stringify(expect.contains)}`, excerptOf(response.text))
        }
      })
    }

    await run('bad input is refused', async () => {
      const bad = inputs ? missingColumnBody(inputs) : undefined
      if (!bad)
        throw new CheckSkipped(
          model ? 'the model has no signature with a required named input column' : 'no model (-m) to read a signature from',
        )
      const response = await call('POST', '/invocations', {data: bad.body, contentType: 'application/json'})
      // 401 and 403 refuse the caller, not the input: they prove nothing about the model.
      if (response.status < 400 || response.status > 499 || response.status === 401 || response.status === 403) {
        throw new CheckFailure(
          `a body without the column '${bad.column}': expected a 4xx status other than 401 and 403, got ${response.status}`,
          excerptOf(response.text),
        )
      }

      let envelope: unknown
      try {
        envelope = JSON.parse(response.text)
      } catch {}

      const {error_code: code, message} = (typeof envelope === 'object' && envelope !== null ? envelope : {}) as Record<string, unknown>
      if (typeof code !== 'string' || typeof message !== 'string') {
        throw new CheckFailure(
          `a body without the column '${bad.column}': expected MLflow's error envelope {"error_code", "message"}`,
          excerptOf(response.text),
        )
      }

      const ping = await call('GET', '/ping')
      if (ping.status !== 200)
        throw new CheckFailure(`the server stopped answering after bad input: GET /ping got ${ping.status}`, excerptOf(ping.text))
      return `${response.status} ${code} without column '${bad.column}'; /ping still 200`
    })

    await run('output schema', async () => {
      if (!outputs) throw new CheckSkipped(model ? "the model's signature has no outputs" : 'no model (-m) to read a signature from')
      if (predicted.length === 0) throw new CheckSkipped('no case got predictions to check')
      const problems: string[] = []
      for (const {name, text} of predicted) {
        let predictions: unknown
        try {
          predictions = predictionsOf(text)
        } catch {
          problems.push(`${name}: the response is not JSON: ${excerptOf(text, 80)}`)
          continue
        }

        for (const violation of checkPredictions(outputs, predictions)) problems.push(`${name}: ${violation}`)
      }

      if (problems.length > 0) throw new CheckFailure(`the predictions do not conform to the signature's outputs:\n${problems.join('\n')}`)
      return `${predicted.length} response${predicted.length === 1 ? '' : 's'} checked`
    })
  } finally {
    await agent.close().catch(() => {})
  }

  return results
}
