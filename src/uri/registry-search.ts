// The names of every registered model, for registry patterns: the tracking server's
// registered-models/search (paged), or a local file store's registry directory; other stores refused.
import type {EnvVars} from '../config.js'
import {MlserveError} from '../errors.js'
import {fileStore, fileStoreRoot} from './file-store.js'
import {RestClient} from './rest.js'
import {restStore} from './store.js'
import {redactUri, requireStore, storeKind, trackingFrom} from './tracking.js'

export interface SearchContext {
  readonly cwd: string
  readonly env?: EnvVars
  readonly signal?: AbortSignal
}

/** Checks (no network) that the registry can be searched: an MLflow server or a local file store. */
export async function checkRegistrySearchable(context: SearchContext): Promise<void> {
  const env = context.env ?? process.env
  const tracking = await trackingFrom(env, context.cwd)
  requireStore(tracking, env)
  if (storeKind(tracking.registryUri) === 'delegate') {
    throw new MlserveError(
      'UNSUPPORTED_MODEL_URI',
      `A registry pattern (models:/*@alias) needs a registry mlserve can search: an MLflow tracking server (http:// or https://) or a local file store, not ${redactUri(tracking.registryUri)}.`,
      {
        suggestions: [
          'Run `mlflow server --backend-store-uri <that URI>` and set MLFLOW_TRACKING_URI to it, or name the models one by one (-m NAME=models:/NAME@alias).',
        ],
      },
    )
  }
}

/** Every registered model's name (the REST search is paged, up to 100 pages of 1000). */
export async function registeredModelNames(context: SearchContext): Promise<string[]> {
  await checkRegistrySearchable(context)
  const env = context.env ?? process.env
  const tracking = await trackingFrom(env, context.cwd)
  const uri = tracking.registryUri
  if (storeKind(uri) === 'file') {
    const root = fileStoreRoot(uri, tracking.cwd)
    return fileStore(root, root).registeredModelNames!()
  }

  const client = new RestClient(tracking, context.signal)
  try {
    return await restStore(client, uri, uri).registeredModelNames!()
  } finally {
    await client.close()
  }
}
