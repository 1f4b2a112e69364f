// The lookups model URIs need from a tracking store and a model registry, and their REST implementation (spec 4.4).
import {MlserveError} from '../errors.js'
import {restFailureOf, type RestClient} from './rest.js'

export interface RunInfo {
  readonly artifactUri: string
  readonly experimentId: string
}

/** The questions runs:/ and models:/ URIs ask; each answer is an artifact URI or a version number. */
export interface ModelStore {
  run(runId: string): Promise<RunInfo>
  /** The artifact URI of the logged model named `name` that run `runId` produced, if any. */
  loggedModelOfRun(experimentId: string, name: string, runId: string): Promise<string | undefined>
  loggedModel(modelId: string): Promise<string>
  /** The version's download URI: storage_location or source (may be `models:/m-…` or `runs:/…`). */
  versionDownloadUri(name: string, version: string): Promise<string>
  versionOfAlias(name: string, alias: string): Promise<string>
  /** Highest version in `stage` (case-insensitive), or of all versions without a stage. */
  latestVersion(name: string, stage?: string): Promise<string>
  /** Some registered model names (for "did you mean" hints; best effort). */
  registeredModelNames?(): Promise<string[]>
}

export const runNotFound = (runId: string, detail?: string): MlserveError =>
  new MlserveError('RUN_NOT_FOUND', detail ?? `Run with id=${runId} not found`, {
    suggestions: ['Check the run id and MLFLOW_TRACKING_URI (the run must be in that tracking store).'],
  })

export const registeredModelNotFound = (name: string): MlserveError =>
  new MlserveError('REGISTERED_MODEL_NOT_FOUND', `Registered Model with name=${name} not found`, {
    suggestions: ['Check the model name and MLFLOW_REGISTRY_URI / MLFLOW_TRACKING_URI.'],
  })

export const versionNotFound = (name: string, version: string): MlserveError =>
  new MlserveError('MODEL_VERSION_NOT_FOUND', `Model Version (name=${name}, version=${version}) not found`)

export const stageEmpty = (name: string, stage: string | undefined): MlserveError =>
  new MlserveError('MODEL_VERSION_NOT_FOUND', `No versions of model with name '${name}' and stage '${stage ?? 'None'}' found`)

export const aliasNotFound = (name: string, alias: string): MlserveError =>
  new MlserveError('MODEL_ALIAS_NOT_FOUND', `Registered model alias ${alias} not found for model '${name}'.`)

export const loggedModelNotFound = (modelId: string): MlserveError =>
  new MlserveError('LOGGED_MODEL_NOT_FOUND', `Logged model with ID '${modelId}' not found.`, {
    suggestions: ["Logged model ids look like 'm-<32 hex digits>'; check MLFLOW_TRACKING_URI."],
  })

const maxVersion = (versions: ReadonlyArray<{version?: string}>): string | undefined =>
  versions
    .map((v) => Number(v.version))
    .filter((v) => Number.isInteger(v))
    .sort((a, b) => b - a)[0]
    ?.toString()

/** A ModelStore that asks an MLflow server (tracking base URL and registry base URL). */
export function restStore(client: RestClient, trackingBase: string, registryBase: string): ModelStore {
  const notFound = (error: unknown): boolean => restFailureOf(error)?.errorCode === 'RESOURCE_DOES_NOT_EXIST'
  const modelExists = async (name: string): Promise<boolean> => {
    try {
      await client.get(registryBase, 'mlflow/registered-models/get', {name})
      return true
    } catch (error) {
      if (notFound(error)) return false
      throw error
    }
  }

  return {
    async registeredModelNames() {
      const names: string[] = []
      let pageToken: string | undefined
      for (let page = 0; page < 100; page++) {
        type Answer = {registered_models?: Array<{name?: string}>; next_page_token?: string}
        // eslint-disable-next-line no-await-in-loop
        const answer = await client.get<Answer>(registryBase, 'mlflow/registered-models/search', {
          max_results: '1000',
          ...(pageToken ? {page_token: pageToken} : {}),
        })
        for (const model of answer.registered_models ?? []) if (model.name) names.push(model.name)
        pageToken = answer.next_page_token
        if (!pageToken) break
      }

      return names
    },
    async run(runId) {
      try {
        const answer = await client.get<{run?: {info?: {artifact_uri?: string; experiment_id?: string}}}>(trackingBase, 'mlflow/runs/get', {
          run_id: runId,
        })
        const info = answer.run?.info
        if (!info?.artifact_uri) throw runNotFound(runId)
        return {artifactUri: info.artifact_uri, experimentId: info.experiment_id ?? '0'}
      } catch (error) {
        if (notFound(error)) throw runNotFound(runId, restFailureOf(error)?.message)
        throw error
      }
    },

    async loggedModelOfRun(experimentId, name, runId) {
      let pageToken: string | undefined
      for (let page = 0; page < 100; page++) {
        type Answer = {models?: Array<{info?: {artifact_uri?: string; source_run_id?: string}}>; next_page_token?: string}
        // eslint-disable-next-line no-await-in-loop
        const answer = await client.post<Answer>(trackingBase, 'mlflow/logged-models/search', {
          experiment_ids: [experimentId],
          filter: `name = '${name.replaceAll("'", "\\'")}'`,
          ...(pageToken ? {page_token: pageToken} : {}),
        })
        const match = answer.models?.find((model) => model.info?.source_run_id === runId)
        if (match?.info?.artifact_uri) return match.info.artifact_uri
        pageToken = answer.next_page_token
        if (!pageToken) return undefined
      }

      return undefined
    },

    async loggedModel(modelId) {
      try {
        const answer = await client.get<{model?: {info?: {artifact_uri?: string}}}>(
          trackingBase,
          `mlflow/logged-models/${encodeURIComponent(modelId)}`,
        )
        if (!answer.model?.info?.artifact_uri) throw loggedModelNotFound(modelId)
        return answer.model.info.artifact_uri
      } catch (error) {
        if (notFound(error)) throw loggedModelNotFound(modelId)
        throw error
      }
    },

    async versionDownloadUri(name, version) {
      try {
        const answer = await client.get<{artifact_uri?: string}>(registryBase, 'mlflow/model-versions/get-download-uri', {name, version})
        if (!answer.artifact_uri) throw versionNotFound(name, version)
        return answer.artifact_uri
      } catch (error) {
        if (!notFound(error)) throw error
        throw (await modelExists(name)) ? versionNotFound(name, version) : registeredModelNotFound(name)
      }
    },

    async versionOfAlias(name, alias) {
      try {
        const answer = await client.get<{model_version?: {version?: string}}>(registryBase, 'mlflow/registered-models/alias', {name, alias})
        if (!answer.model_version?.version) throw aliasNotFound(name, alias)
        return answer.model_version.version
      } catch (error) {
        if (restFailureOf(error) === undefined) throw error
        throw (await modelExists(name)) ? aliasNotFound(name, alias) : registeredModelNotFound(name)
      }
    },

    async latestVersion(name, stage) {
      try {
        const answer = await client.post<{model_versions?: Array<{version?: string}>}>(
          registryBase,
          'mlflow/registered-models/get-latest-versions',
          stage === undefined ? {name} : {name, stages: [stage]},
        )
        const version = maxVersion(answer.model_versions ?? [])
        if (version === undefined) throw stageEmpty(name, stage)
        return version
      } catch (error) {
        if (notFound(error)) throw registeredModelNotFound(name)
        throw error
      }
    },
  }
}
