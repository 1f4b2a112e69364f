// A model URI becomes a local model directory: local paths and file: URIs here; remote schemes later.
import {stat} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {MlserveError} from '../errors.js'

export interface ModelRef {
  /** The URI as the user gave it. */
  readonly uri: string
  /** Absolute path of the model directory on this machine. */
  readonly localDir: string
}

/** The scheme of a URI (`runs`, `models`, `file`, `s3`, ...), or undefined for a plain path. */
export function uriScheme(uri: string): string | undefined {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)
  // A one-letter "scheme" is a Windows drive letter, not a URI scheme.
  return match && match[1]!.length > 1 ? match[1]!.toLowerCase() : undefined
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

const REMOTE_SCHEMES_LATER = new Set(['runs', 'models', 'mlflow-artifacts', 'http', 'https'])

/** Resolves a model URI to a local directory that exists. */
export async function resolveModelUri(uri: string, cwd: string): Promise<ModelRef> {
  if (uri.trim() === '') {
    throw new MlserveError('INVALID_MODEL_URI', 'The model URI is empty.', {
      suggestions: ['Pass a model directory or URI with -m/--model-uri.'],
    })
  }

  const scheme = uriScheme(uri)
  if (scheme !== undefined && scheme !== 'file') {
    const later = REMOTE_SCHEMES_LATER.has(scheme)
    throw new MlserveError(
      'UNSUPPORTED_MODEL_URI',
      `Model URIs with the scheme '${scheme}:' are not ${later ? 'available yet' : 'supported'} in mlserve: ${uri}`,
      {
        suggestions: [
          'Download the model first (e.g. `mlflow artifacts download -u <uri> -d ./model`) and pass the local directory.',
        ],
      },
    )
  }

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
