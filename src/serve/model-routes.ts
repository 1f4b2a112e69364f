// The routes of a multi-model server: /models/<name>/... to that model's own proxy handler (as /...),
// GET /models and /models/<name>, /invocations to --default-model, /ping and /health for the set.
import type {IncomingMessage, ServerResponse} from 'node:http'

import {pathOf, type ServerState} from '../proxy/app.js'
import {badTargetResponse, errorEnvelope, notReadyResponse, sendPlain, type PlainResponse} from '../proxy/responses.js'
import type {RequestHandler, RequestRecord} from '../proxy/server.js'
import type {ServedEntry} from './models.js'

export interface ModelRoutesDeps {
  readonly entries: readonly ServedEntry[]
  readonly defaultModel?: string
  readonly state: () => ServerState
  /** mlserve's own GET routes (/livez, /readyz, /metrics). */
  readonly operational: Readonly<Record<string, () => PlainResponse>>
  /** The lifecycle (model-pool.ts): a request for a model not loaded starts its load and waits for it. */
  readonly lifecycle?: {
    admit(entry: ServedEntry): Promise<PlainResponse | undefined>
    roomChanged(): void
  }
}

const PREFIX = '/models/'
const json = (status: number, value: unknown): PlainResponse => ({status, contentType: 'application/json', body: JSON.stringify(value)})
const notAllowed: PlainResponse = {...json(405, {detail: 'Method Not Allowed'}), headers: {allow: 'GET'}}
const notFound = json(404, {detail: 'Not Found'})

/** Where /models/<name>/... goes: the model's route and the path its own handler sees. */
export function splitModelPath(path: string): {name: string; rest: string} | undefined {
  if (!path.startsWith(PREFIX)) return undefined
  const tail = path.slice(PREFIX.length)
  const slash = tail.indexOf('/')
  return slash < 0 ? {name: tail, rest: ''} : {name: tail.slice(0, slash), rest: tail.slice(slash)}
}

const V2_PREFIX = '/v2/models/'

/** The model a V2 per-model path names (/v2/models/<name>, /v2/models/<name>/infer, .../versions/<v>/ready). */
export function splitV2Path(path: string): string | undefined {
  if (!path.startsWith(V2_PREFIX)) return undefined
  const name = path.slice(V2_PREFIX.length).split('/', 1)[0]!
  return name === '' ? undefined : name
}

const servedNames = (entries: readonly ServedEntry[]) => entries.map((entry) => entry.name).join(', ')

/** MLflow's envelope for a name no model has, listing the names served. */
export const unknownModelResponse = (name: string, entries: readonly ServedEntry[]): PlainResponse =>
  errorEnvelope(
    404,
    'RESOURCE_DOES_NOT_EXIST',
    `No model named ${JSON.stringify(name.slice(0, 200))} is served here. Served models: ${servedNames(entries)}.`,
  )

/** /invocations with several models and no --default-model. */
export const noDefaultResponse = (entries: readonly ServedEntry[]): PlainResponse =>
  errorEnvelope(
    404,
    'ENDPOINT_NOT_FOUND',
    `This server serves several models: POST /models/<name>/invocations, with <name> one of: ${servedNames(entries)} (or start mlserve with --default-model NAME).`,
  )

const failedResponse = (entry: ServedEntry): PlainResponse =>
  errorEnvelope(503, 'TEMPORARILY_UNAVAILABLE', `The model ${entry.name} failed to load: ${entry.error ?? 'unknown error'}`)

/** What GET /models and /models/<name> say about one model. */
export function describeEntry(entry: ServedEntry): Record<string, unknown> {
  const {served, environment, switchboard} = entry
  return {
    name: entry.name,
    uri: served?.uri ?? entry.uri,
    version: served?.version ?? null,
    run_id: served?.runId ?? null,
    state: entry.state,
    ...(entry.error === undefined ? {} : {error: entry.error}),
    environment: environment ? {manager: environment.manager, key: environment.key ?? null} : null,
    scorers: {...(switchboard?.counts() ?? {starting: 0, ready: 0, retiring: 0}), configured: entry.options.workers},
    route: `/models/${entry.name}/invocations`,
    memory_bytes: entry.state === 'loaded' ? (entry.memory ?? null) : null,
    last_used: entry.lastUsedAt === undefined ? null : new Date(entry.lastUsedAt).toISOString(),
  }
}

export function createModelRouter(deps: ModelRoutesDeps): RequestHandler {
  const {entries, operational, lifecycle} = deps
  // The list is live (registry patterns add and remove models, the lifecycle loads and unloads them): looked up per request.
  const find = (name: string) => entries.find((entry) => entry.name === name)
  const answer = (req: IncomingMessage, res: ServerResponse, response: PlainResponse) => {
    req.resume()
    sendPlain(res, response)
  }

  const delegate = (entry: ServedEntry, url: string, req: IncomingMessage, res: ServerResponse, record: RequestRecord) => {
    record.model = entry.name
    if (entry.state === 'failed') {
      record.refusal = 'unavailable'
      answer(req, res, failedResponse(entry))
      return
    }

    if (url !== req.url) {
      record.target = req.url
      req.url = url
    }

    if (!lifecycle) return entry.handle(req, res, record)
    // Counted busy (never evicted) from arrival to the end of its response.
    entry.busy++
    entry.touch()
    res.once('close', () => {
      entry.busy--
      entry.touch()
      lifecycle.roomChanged()
    })
    if (entry.state === 'loaded') return entry.handle(req, res, record)
    void lifecycle.admit(entry).then((refusal) => {
      if (res.destroyed) return
      if (refusal) {
        record.refusal = 'unavailable'
        return answer(req, res, refusal)
      }

      if (entry.state === 'failed') {
        record.refusal = 'unavailable'
        return answer(req, res, failedResponse(entry))
      }

      entry.handle(req, res, record)
    })
  }

  // An unloaded model can be served: its first request loads it.
  const servable = () => entries.some((entry) => entry.state === 'loaded' || entry.state === 'unloaded')
  // Readiness: the state is 'ready' once every model listed at start is prepared (see serve-models.ts).
  const serving = () => deps.state() === 'ready' && servable()
  const getOnly = (req: IncomingMessage, response: () => PlainResponse) => (req.method === 'GET' ? response() : notAllowed)

  return (req, res, record) => {
    const url = req.url ?? '/'
    if (!url.startsWith('/')) return answer(req, res, badTargetResponse(url))
    const path = pathOf(url)
    const own = operational[path]
    if (own && req.method === 'GET') return answer(req, res, own())
    if (path === '/models') {
      return answer(
        req,
        res,
        getOnly(req, () => json(200, {models: entries.map((entry) => describeEntry(entry)), default_model: deps.defaultModel ?? null})),
      )
    }

    const split = splitModelPath(path)
    if (split) {
      const entry = find(split.name)
      if (!entry) return answer(req, res, unknownModelResponse(split.name, entries))
      if (split.rest === '')
        return answer(
          req,
          res,
          getOnly(req, () => json(200, describeEntry(entry))),
        )
      return delegate(entry, split.rest + url.slice(path.length), req, res, record)
    }

    // MLServer's V2 protocol (--enable-mlserver): /v2/models/<name>/... to that model (its MLServer serves it as <name>).
    const v2 = splitV2Path(path)
    if (v2 !== undefined) {
      const entry = find(v2)
      if (!entry) return answer(req, res, json(404, {error: `Model ${v2.slice(0, 200)} not found. Served models: ${servedNames(entries)}.`}))
      return delegate(entry, url, req, res, record)
    }

    if (path === '/v2/health/live' || path === '/v2/health/ready') {
      // Liveness does not wait for the other models' preparation; readiness does.
      const ok = path === '/v2/health/live' ? deps.state() !== 'stopping' && servable() : serving()
      return answer(req, res, ok ? {status: 200, contentType: 'application/json', body: ''} : notReadyResponse(deps.state()))
    }

    if (path === '/ping' || path === '/health') {
      if (!serving() && deps.state() !== 'stopping') record.refusal = 'not_ready'
      return answer(req, res, serving() ? {status: 200, contentType: 'application/json', body: '\n'} : notReadyResponse(deps.state()))
    }

    const fallback = deps.defaultModel === undefined ? undefined : find(deps.defaultModel)
    if (fallback) return delegate(fallback, url, req, res, record)
    return answer(req, res, path === '/invocations' ? noDefaultResponse(entries) : notFound)
  }
}
