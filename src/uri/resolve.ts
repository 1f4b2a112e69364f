// A model URI becomes a local model directory: local paths as they are, everything else downloaded once into the model cache.
import {stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import yaml from 'js-yaml'

import type {EnvVars} from '../config.js'
import {MlserveError, isMlserveError} from '../errors.js'
import {silentLogger, type Logger} from '../log.js'
import {nearNames} from '../util/near.js'
import {downloadArtifacts, isNativeArtifactUri} from './artifacts.js'
import {fileStore, fileStoreRoot} from './file-store.js'
import {cachedModel} from './model-cache.js'
import {parseModelUri, parseRunsUri, parseModelsUri, uriScheme, versionUri, joinArtifactUri, type ModelUri} from './parse.js'
import {clientPython, downloadWithMlflow, versionWithMlflow, type PythonClient} from './python-client.js'
import {RestClient} from './rest.js'
import {checkLocalArtifactLocation} from './safe-path.js'
import {restStore, type ModelStore} from './store.js'
import {redactUri, requireStore, sqliteFileOf, storeKind, trackingFrom, type Tracking} from './tracking.js'

export {uriScheme} from './parse.js'

export interface ModelRef {
  /** The URI as the user gave it. */
  readonly uri: string
  /** Absolute path of the model directory on this machine. */
  readonly localDir: string
  /** The registered model and version a models:/ name resolved to (an alias, stage or `latest` looked up now). */
  readonly registered?: {readonly name: string; readonly version: string}
  /** The run of a runs:/ URI. */
  readonly runId?: string
}

/**
 * What a model URI names right now, without downloading it: `key` changes when the reference moves (an
 * alias, a stage or `latest` now names another version) and `fixedUri` resolves to exactly that target.
 */
export interface ModelTarget {
  readonly key: string
  /** A URI naming this target for good (models:/name/<version> for a moving reference; else the URI itself). */
  readonly fixedUri: string
  /** Whether the URI can name something else later (an alias, a stage, `latest`). */
  readonly moving: boolean
  /** A local directory (its content may change under the same path). */
  readonly local: boolean
  readonly registered?: {readonly name: string; readonly version: string}
}

export interface ResolveContext {
  /** The directory relative paths (and mlflow's default ./mlruns and sqlite:///mlflow.db) are resolved against. */
  readonly cwd: string
  /** MLFLOW_TRACKING_URI, credentials, MLSERVE_MODEL_ROOT, MLSERVE_PYTHON, …; process.env by default. */
  readonly env?: EnvVars
  readonly log?: Logger
  readonly signal?: AbortSignal
  /** The interpreter for the mlflow-client fallback (--python); MLSERVE_PYTHON or python3 when absent. */
  readonly python?: string
}

/** Turns a path or file: URI into an absolute path, without touching the disk. */
export function localPathOf(uri: string, cwd: string): string {
  const scheme = uriScheme(uri)
  if (scheme === undefined) return path.resolve(cwd, uri)
  if (scheme !== 'file') {
    throw new MlserveError('UNSUPPORTED_MODEL_URI', `Not a local model URI: ${uri}`)
  }

  // file:///abs, file://localhost/abs and file:/abs are absolute; file:rel is relative to cwd.
  if (/^file:\/\//i.test(uri) || /^file:\//i.test(uri)) {
    try {
      return fileURLToPath(new URL(uri.replace(/^file:\/(?!\/)/i, 'file:///')))
    } catch (error) {
      throw new MlserveError('INVALID_MODEL_URI', `Invalid file URI: ${uri}`, {cause: error})
    }
  }

  return path.resolve(cwd, decodeURIComponent(uri.slice('file:'.length)))
}

async function resolveLocal(uri: string, cwd: string): Promise<ModelRef> {
  const localDir = localPathOf(uri, cwd)
  const info = await stat(localDir).catch(() => undefined)
  if (info === undefined) {
    const suggestions = /^m-[0-9a-f]+$/i.test(uri) ? [`Maybe you meant 'models:/${uri}'?`] : []
    throw new MlserveError('MODEL_NOT_FOUND', `Model path does not exist: ${localDir}`, {suggestions})
  }

  if (!info.isDirectory()) {
    throw new MlserveError('MODEL_NOT_FOUND', `Model path is not a directory: ${localDir}`, {
      suggestions: ['Pass the directory that contains the MLmodel file.'],
    })
  }

  return {uri, localDir}
}

/** Resolves a model URI to a local directory that exists (downloading remote models into the cache). */
export async function resolveModelUri(uri: string, context: string | ResolveContext): Promise<ModelRef> {
  const ctx: ResolveContext = typeof context === 'string' ? {cwd: context} : context
  const parsed = parseModelUri(uri)
  if (parsed.kind === 'local') return resolveLocal(uri, ctx.cwd)
  const env = ctx.env ?? process.env
  const tracking = await trackingFrom(env, ctx.cwd)
  // runs:/ and models:/ are looked up in a store; an artifact URI (s3://, mlflow-artifacts:/) is read directly.
  if (parsed.kind !== 'artifact') requireStore(tracking, env)
  const resolver = new Resolver(tracking, env, ctx.log ?? silentLogger, ctx.signal, ctx.python)
  try {
    const localDir = await resolver.resolve(parsed).catch(async (error: unknown) => {
      throw 'name' in parsed ? await resolver.explainMissingModel(error, parsed.name) : error
    })
    return {uri, localDir, ...identityOf(parsed, resolver.resolvedVersion)}
  } finally {
    await resolver.close()
  }
}

/** The registry version or run a parsed URI names (a moving one: the version it was just resolved to). */
function identityOf(parsed: Exclude<ModelUri, {kind: 'local'}>, resolvedVersion: string | undefined): Pick<ModelRef, 'registered' | 'runId'> {
  switch (parsed.kind) {
    case 'model-alias':
    case 'model-stage':
    case 'model-latest':
      return resolvedVersion === undefined ? {} : {registered: {name: parsed.name, version: resolvedVersion}}
    case 'model-version':
      return {registered: {name: parsed.name, version: parsed.version}}
    case 'run':
      return {runId: parsed.runId}
    default:
      return {}
  }
}

/** Whether `uri` can name another model later: an alias, a stage or `latest`. */
export function isMovingUri(uri: string): boolean {
  const {kind} = parseModelUri(uri)
  return kind === 'model-alias' || kind === 'model-stage' || kind === 'model-latest'
}

/** The ModelTarget key of what `ref` resolved to (compare with lookUpModelTarget's). */
export function targetKeyOf(ref: ModelRef): string {
  if (ref.registered) return versionUri(ref.registered.name, ref.registered.version)
  return parseModelUri(ref.uri).kind === 'local' ? ref.localDir : ref.uri
}

/**
 * Looks up what `uri` names now (one registry call for an alias, a stage or `latest`; none otherwise),
 * with the same tracking client, credentials and retries as a start.
 */
export async function lookUpModelTarget(uri: string, context: ResolveContext): Promise<ModelTarget> {
  const parsed = parseModelUri(uri)
  if (parsed.kind === 'local') return {key: localPathOf(uri, context.cwd), fixedUri: uri, moving: false, local: true}
  if (parsed.kind !== 'model-alias' && parsed.kind !== 'model-stage' && parsed.kind !== 'model-latest') {
    return {key: uri, fixedUri: uri, moving: false, local: false, ...identityOf(parsed, undefined)}
  }

  const env = context.env ?? process.env
  const tracking = await trackingFrom(env, context.cwd)
  requireStore(tracking, env)
  const resolver = new Resolver(tracking, env, context.log ?? silentLogger, context.signal, context.python)
  try {
    const version = await resolver.currentVersion(parsed).catch(async (error: unknown) => {
      throw await resolver.explainMissingModel(error, parsed.name)
    })
    const fixedUri = versionUri(parsed.name, version)
    return {key: fixedUri, fixedUri, moving: true, local: false, registered: {name: parsed.name, version}}
  } finally {
    await resolver.close()
  }
}

/** One resolution: the stores (REST client, file store or the Python client) it needs, opened lazily. */
class Resolver {
  #client?: RestClient
  /** The version an alias, stage or `latest` was resolved to. */
  resolvedVersion: string | undefined

  constructor(
    readonly tracking: Tracking,
    readonly env: EnvVars,
    readonly log: Logger,
    readonly signal?: AbortSignal,
    readonly pythonPath?: string,
  ) {}

  get client(): RestClient {
    this.#client ??= new RestClient(this.tracking, this.signal)
    return this.#client
  }

  async close(): Promise<void> {
    await this.#client?.close()
  }

  get python(): PythonClient {
    return {python: clientPython(this.env, this.pythonPath), env: this.env, tracking: this.tracking, signal: this.signal}
  }

  /** The store for runs and logged models (tracking) or registered models (registry); undefined: ask the Python client. */
  store(which: 'tracking' | 'registry'): ModelStore | undefined {
    const uri = which === 'tracking' ? this.tracking.trackingUri : this.tracking.registryUri
    const kind = storeKind(uri)
    if (kind === 'delegate') return undefined
    const other = which === 'tracking' ? this.tracking.registryUri : this.tracking.trackingUri
    if (kind === 'rest') return restStore(this.client, uri, storeKind(other) === 'rest' ? other : uri)
    const root = fileStoreRoot(uri, this.tracking.cwd)
    return fileStore(root, storeKind(other) === 'file' ? fileStoreRoot(other, this.tracking.cwd) : root)
  }

  /** The stores a source is read from, normalised for the cache key (relative paths made absolute). */
  get storeKey(): string[] {
    const norm = (uri: string) =>
      storeKind(uri) === 'file'
        ? fileStoreRoot(uri, this.tracking.cwd)
        : /^sqlite:\/\/\/(?!\/)/.test(uri)
          ? `${uri} @ ${this.tracking.cwd}`
          : uri
    return [norm(this.tracking.trackingUri), norm(this.tracking.registryUri)]
  }

  async resolve(parsed: Exclude<ModelUri, {kind: 'local'}>): Promise<string> {
    switch (parsed.kind) {
      case 'model-alias':
      case 'model-stage':
      case 'model-latest': {
        const version = await this.currentVersion(parsed)
        this.resolvedVersion = version
        this.log.info(`${parsed.uri} is version ${version} of registered model '${parsed.name}' (looked up on every start)`)
        return this.cached(versionUri(parsed.name, version), (dir) => this.downloadVersion(parsed.name, version, dir))
      }

      case 'model-version':
        return this.cached(versionUri(parsed.name, parsed.version), (dir) => this.downloadVersion(parsed.name, parsed.version, dir))
      case 'logged-model':
        return this.cached(`models:/${parsed.modelId}`, (dir) => this.downloadLoggedModel(parsed.modelId, dir))
      case 'run':
        return this.cached(`runs:/${parsed.runId}/${parsed.path}`, (dir) => this.downloadRun(parsed.runId, parsed.path, dir))
      case 'artifact':
        return this.cached(parsed.uri, (dir) => this.downloadArtifactUri(parsed.uri, dir))
    }
  }

  /** A registered model that is not found: the registry searched, and the near names in it (best effort). */
  async explainMissingModel(error: unknown, name: string): Promise<unknown> {
    if (!isMlserveError(error) || error.code !== 'REGISTERED_MODEL_NOT_FOUND') return error
    const names =
      (await this.store('registry')
        ?.registeredModelNames?.()
        .catch(() => [])) ?? []
    const near = nearNames(name, names)
    const uri = this.tracking.registryUri
    const file = sqliteFileOf(uri, this.tracking.cwd)
    const where = `the model registry at ${redactUri(uri)}${file && !uri.startsWith('sqlite:////') ? ` (${file})` : ''}`
    return new MlserveError('REGISTERED_MODEL_NOT_FOUND', `${error.message} in ${where}`, {
      cause: error,
      suggestions: [...(near.length > 0 ? [`Registered models with a similar name: ${near.join(', ')}.`] : []), ...error.suggestions],
    })
  }

  async currentVersion(parsed: Extract<ModelUri, {kind: 'model-alias' | 'model-stage' | 'model-latest'}>): Promise<string> {
    const store = this.store('registry')
    if (parsed.kind === 'model-alias') {
      return store ? store.versionOfAlias(parsed.name, parsed.alias) : versionWithMlflow(this.python, parsed.name, 'alias', parsed.alias)
    }

    const stage = parsed.kind === 'model-stage' ? parsed.stage : undefined
    if (store) return store.latestVersion(parsed.name, stage)
    return versionWithMlflow(this.python, parsed.name, stage === undefined ? 'latest' : 'stage', stage)
  }

  async cached(source: string, download: (dir: string) => Promise<void>): Promise<string> {
    const phase = this.log.phase(`fetch ${redactUri(source)}`, {live: true})
    // The cache keys and records the source without its credentials (they are not part of what is cached).
    const model = await cachedModel({
      env: this.env,
      source: redactUri(source),
      stores: this.storeKey,
      download,
      signal: this.signal,
      onWait: (pid) => this.log.info(`waiting for process ${pid}, which is downloading the same model`),
    })
    phase.done(model.downloaded ? `downloaded into ${model.dir}` : `cached in ${model.dir}`)
    return model.dir
  }

  async downloadVersion(name: string, version: string, dir: string): Promise<void> {
    const store = this.store('registry')
    if (!store) {
      await downloadWithMlflow(this.python, versionUri(name, version), dir)
    } else {
      const source = await store.versionDownloadUri(name, version)
      checkLocalArtifactLocation(source, `version ${version} of ${name}`)
      await this.downloadSource(source, dir)
    }

    // mlflow's ModelsArtifactRepository marks a downloaded model with its registry identity.
    await writeFile(path.join(dir, 'registered_model_meta'), yaml.dump({model_name: name, model_version: String(version)}))
  }

  /** A version's download URI: a logged model, a run path, or an artifact URI. */
  async downloadSource(source: string, dir: string): Promise<void> {
    const scheme = uriScheme(source)
    if (scheme === 'runs') {
      const {runId, path: runPath} = parseRunsUri(source)
      return this.downloadRun(runId, runPath, dir)
    }

    if (scheme === 'models') {
      const parsed = parseModelsUri(source)
      if (parsed.kind === 'logged-model') return this.downloadLoggedModel(parsed.modelId, dir)
      throw new MlserveError('MLFLOW_DOWNLOAD_FAILED', `A model version's source is itself a registry URI (${source}); not supported.`)
    }

    return this.downloadArtifactUri(source, dir)
  }

  async downloadLoggedModel(modelId: string, dir: string): Promise<void> {
    const store = this.store('tracking')
    if (!store) return downloadWithMlflow(this.python, `models:/${modelId}`, dir)
    const location = await store.loggedModel(modelId)
    checkLocalArtifactLocation(location, `the logged model ${modelId}`, modelId)
    return this.downloadArtifactUri(location, dir)
  }

  /** runs:/ with MLflow 3's fallback: the run's artifacts at `path`, overlaid by the run's logged model of that name. */
  async downloadRun(runId: string, runPath: string, dir: string): Promise<void> {
    const store = this.store('tracking')
    if (!store) return downloadWithMlflow(this.python, `runs:/${runId}/${runPath}`, dir)
    const run = await store.run(runId)
    checkLocalArtifactLocation(run.artifactUri, `the run ${runId}`, runId)
    let found = await this.downloadArtifactUriIfAny(joinArtifactUri(run.artifactUri, runPath), dir)
    const [name, ...rest] = runPath.split('/')
    if (name) {
      const model = await store.loggedModelOfRun(run.experimentId, name, runId)
      if (model) checkLocalArtifactLocation(model, `the logged model '${name}' of the run ${runId}`)
      if (model) found = (await this.downloadArtifactUriIfAny(joinArtifactUri(model, rest.join('/')), dir)) || found
    }

    if (!found) {
      throw new MlserveError(
        'ARTIFACT_NOT_FOUND',
        `Failed to download artifacts from path '${runPath}', please ensure that the path is correct.`,
        {suggestions: [`The run ${runId} has no artifact and no logged model at '${runPath}'.`]},
      )
    }
  }

  async downloadArtifactUri(uri: string, dir: string): Promise<void> {
    if (!(await this.downloadArtifactUriIfAny(uri, dir))) {
      throw new MlserveError('ARTIFACT_NOT_FOUND', `No artifacts found at ${redactUri(uri)}.`)
    }
  }

  async downloadArtifactUriIfAny(uri: string, dir: string): Promise<boolean> {
    if (isNativeArtifactUri(uri)) return downloadArtifacts(uri, dir, this.client, this.tracking.trackingUri)
    await downloadWithMlflow(this.python, uri, dir)
    return true
  }
}
