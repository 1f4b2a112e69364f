// Model URIs as data: parses every form `mlflow models serve` accepts, with mlflow's messages for malformed ones.
import {MlserveError} from '../errors.js'
import {checkArtifactSubpath} from './safe-path.js'

/** What a model URI names, before any lookup. */
export type ModelUri =
  | {readonly kind: 'local'; readonly uri: string}
  | {readonly kind: 'run'; readonly uri: string; readonly runId: string; readonly path: string}
  | {readonly kind: 'model-version'; readonly uri: string; readonly name: string; readonly version: string}
  | {readonly kind: 'model-stage'; readonly uri: string; readonly name: string; readonly stage: string}
  | {readonly kind: 'model-latest'; readonly uri: string; readonly name: string}
  | {readonly kind: 'model-alias'; readonly uri: string; readonly name: string; readonly alias: string}
  | {readonly kind: 'logged-model'; readonly uri: string; readonly modelId: string}
  | {readonly kind: 'artifact'; readonly uri: string; readonly scheme: string}

/** The scheme of a URI (`runs`, `models`, `file`, `s3`, ...), or undefined for a plain path. */
export function uriScheme(uri: string): string | undefined {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)
  // A one-letter "scheme" is a Windows drive letter, not a URI scheme.
  return match && match[1]!.length > 1 ? match[1]!.toLowerCase() : undefined
}

/** The schemes mlflow's artifact repository registry knows without plugins. */
export const ARTIFACT_SCHEMES = [
  '',
  'file',
  's3',
  'r2',
  'gs',
  'wasbs',
  'abfss',
  'ftp',
  'sftp',
  'dbfs',
  'hdfs',
  'viewfs',
  'runs',
  'models',
  'http',
  'https',
  'mlflow-artifacts',
] as const

const runsMessage = (uri: string) =>
  `Not a proper runs:/ URI: ${uri}. Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'`

const modelsMessage = (uri: string) =>
  `Not a proper models:/ URI: ${uri}. Models URIs must be of the form 'models:/name/suffix' or 'models:/name@alias' where suffix is a version, stage, or the string 'latest' and where alias is a registered model alias. Only one of suffix or alias can be defined at a time.`

/** The path part of `scheme:/path`, `scheme:path` or `scheme://netloc/path` (netloc must be empty). */
function pathAfterScheme(uri: string, scheme: string): {netloc: string; path: string} {
  const rest = uri.slice(scheme.length + 1)
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2)
    return slash === -1 ? {netloc: rest.slice(2), path: ''} : {netloc: rest.slice(2, slash), path: rest.slice(slash)}
  }

  return {netloc: '', path: rest}
}

/** Parses `runs:/<run_id>/<path>` as mlflow's RunsArtifactRepository.parse_runs_uri does. */
export function parseRunsUri(uri: string): {runId: string; path: string} {
  const {netloc, path} = pathAfterScheme(uri, 'runs')
  const stripped = path.replace(/^\/+/, '')
  if (netloc !== '' || stripped === '') throw new MlserveError('INVALID_MODEL_URI', runsMessage(uri))
  const [runId, ...rest] = stripped.split('/')
  if (!runId || runId === '.' || runId === '..') throw new MlserveError('INVALID_MODEL_URI', runsMessage(uri))
  const relative = rest.join('/').replace(/\/+$/, '')
  checkArtifactSubpath(relative, uri)
  return {runId, path: relative}
}

/** Parses `models:/…` as mlflow's `_parse_model_uri` does (spec 4.3). */
export function parseModelsUri(uri: string): ModelUri {
  const {netloc, path} = pathAfterScheme(uri, 'models')
  // A models:// URI with a netloc is a Databricks profile; mlflow's parser takes only the path.
  void netloc
  const stripped = path.startsWith('/') ? path.slice(1) : path
  const parts = stripped.split('/')
  const fail = () => new MlserveError('INVALID_MODEL_URI', modelsMessage(uri))
  if (stripped === '' || parts.length > 2 || parts[0]!.trim() === '') throw fail()
  if (/[*?]/.test(/^[^/@]*/.exec(stripped)![0])) {
    throw new MlserveError(
      'INVALID_MODEL_URI',
      `${uri} is a registry pattern: it names several models, and only \`mlserve serve\` serves patterns.`,
      {
        suggestions: [
          "Give one model's URI here (models:/<name>@<alias>), or serve the pattern: mlserve serve -m '<pattern>' (docs/multi-model.md).",
        ],
      },
    )
  }

  if (parts.length === 2) {
    const [name, suffix] = parts as [string, string]
    if (suffix.trim() === '') throw fail()
    if (/^\d+$/.test(suffix)) return {kind: 'model-version', uri, name, version: suffix}
    if (suffix.toLowerCase() === 'latest') return {kind: 'model-latest', uri, name}
    return {kind: 'model-stage', uri, name, stage: suffix}
  }

  const only = parts[0]!
  const at = only.lastIndexOf('@')
  if (at === -1) return {kind: 'logged-model', uri, modelId: only}
  const name = only.slice(0, at)
  const alias = only.slice(at + 1)
  if (name.trim() === '' || alias.trim() === '') throw fail()
  return {kind: 'model-alias', uri, name, alias}
}

/** Parses any model URI; a plain path or file: URI is `local`. */
export function parseModelUri(uri: string): ModelUri {
  if (uri.trim() === '') {
    throw new MlserveError('INVALID_MODEL_URI', 'The model URI is empty.', {
      suggestions: ['Pass a model directory or URI with -m/--model-uri.'],
    })
  }

  const scheme = uriScheme(uri)
  if (scheme === undefined || scheme === 'file') return {kind: 'local', uri}
  if (scheme === 'runs') {
    const {runId, path} = parseRunsUri(uri)
    return {kind: 'run', uri, runId, path}
  }

  if (scheme === 'models') return parseModelsUri(uri)
  return {kind: 'artifact', uri, scheme}
}

/** The string that names a version for the cache and the registered_model_meta file. */
export const versionUri = (name: string, version: string): string => `models:/${name}/${version}`

/** Appends a relative path to an artifact URI (no duplicate slashes; query strings kept). */
export function joinArtifactUri(base: string, relative: string): string {
  const rel = relative.replace(/^\/+|\/+$/g, '')
  if (rel === '') return base
  const query = base.indexOf('?')
  const [head, tail] = query === -1 ? [base, ''] : [base.slice(0, query), base.slice(query)]
  return `${head.replace(/\/+$/, '')}/${rel}${tail}`
}

export const ARTIFACTS_ENDPOINT = '/api/2.0/mlflow-artifacts/artifacts'

/** Resolves `mlflow-artifacts:` against the tracking URI, as mlflow's MlflowArtifactsRepository.resolve_uri. */
export function mlflowArtifactsUrl(artifactUri: string, trackingUri: string): string {
  const tracking = /^(https?):\/\/([^/?#]*)([^?#]*)/i.exec(trackingUri)
  if (!tracking) {
    throw new MlserveError(
      'TRACKING_URI_INVALID',
      `When an mlflow-artifacts URI was supplied, the tracking URI must be a valid http or https URI, but it was currently set to ${trackingUri}. Perhaps you forgot to set the tracking URI to the running MLflow server. To set the tracking URI, use either of the following methods:\n1. Set the MLFLOW_TRACKING_URI environment variable to the desired tracking URI. \`export MLFLOW_TRACKING_URI=http://localhost:5000\`\n2. Set the tracking URI programmatically by calling \`mlflow.set_tracking_uri\`. \`mlflow.set_tracking_uri('http://localhost:5000')\``,
      {suggestions: ['Set MLFLOW_TRACKING_URI to the MLflow server, e.g. export MLFLOW_TRACKING_URI=http://localhost:5000']},
    )
  }

  const [, trackScheme, trackNetloc, trackPath] = tracking as unknown as [string, string, string, string]
  const {netloc, path} = pathAfterScheme(artifactUri, 'mlflow-artifacts')
  if (/^:\d+$/.test(netloc)) {
    throw new MlserveError(
      'INVALID_MODEL_URI',
      `The mlflow-artifacts uri was supplied with a port number: ${netloc.slice(1)}, but no host was defined.`,
    )
  }

  const resolved = (path === '/' ? `${ARTIFACTS_ENDPOINT}/` : `${trackPath}/${ARTIFACTS_ENDPOINT}/${path}`).replace(/\/\/+/g, '/')
  return `${trackScheme.toLowerCase()}://${netloc || trackNetloc}${resolved}`.replace(/\/+$/, '')
}

/** Splits an artifact-proxy URL into the server base and the artifact path under the proxy root. */
export function splitProxyUrl(url: string): {base: string; root: string} | undefined {
  const at = url.indexOf(ARTIFACTS_ENDPOINT)
  if (at === -1 || !/^https?:\/\//i.test(url)) return undefined
  return {base: url.slice(0, at), root: decodeURIComponent(url.slice(at + ARTIFACTS_ENDPOINT.length).replace(/^\/+|\/+$/g, ''))}
}
