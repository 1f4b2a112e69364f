// Path safety for downloads: a listed artifact path must stay inside the destination directory.
import path from 'node:path'

import {MlserveError} from '../errors.js'
import {isInsideDir} from '../util/fs.js'

/** Whether `relative` is a plain relative POSIX path: no `..`, not absolute, no backslash or NUL. */
export function isSafeRelativePath(relative: string): boolean {
  if (relative === '' || relative.startsWith('/') || /[\\\0]/.test(relative) || /^[A-Za-z]:/.test(relative)) return false
  return relative.split('/').every((segment) => segment !== '..' && segment !== '.' && segment !== '')
}

/** `dest/relative`, or UNSAFE_ARTIFACT_PATH if it would leave `dest`. */
export function safeJoin(dest: string, relative: string): string {
  const joined = path.resolve(dest, relative)
  if (!isSafeRelativePath(relative) || !isInsideDir(dest, joined)) {
    throw new MlserveError('UNSAFE_ARTIFACT_PATH', `Refusing to download the artifact '${relative}': it would be written outside ${dest}.`, {
      suggestions: ['The artifact store listed a path with .. or an absolute path; check the tracking server or artifact store.'],
    })
  }

  return joined
}

/** Whether a path segment is `.` or `..`, also percent-encoded (`%2e%2e`, which URL parsers treat as `..`, or `..%2F..`). */
function isDotSegment(segment: string): boolean {
  let decoded = segment
  try {
    decoded = decodeURIComponent(segment)
  } catch {}

  return decoded === '.' || decoded.split(/[\\/]/).includes('..')
}

/** An artifact path inside a run or model (`runs:/<id>/<path>`): `..` would climb out of what the store owns. */
export function checkArtifactSubpath(relative: string, uri: string): void {
  if (!relative.split('/').some((segment) => segment !== '.' && isDotSegment(segment))) return
  throw new MlserveError(
    'UNSAFE_ARTIFACT_PATH',
    `Refusing ${uri}: its artifact path '${relative}' has a '..' segment, which would leave the run's artifacts.`,
    {
      suggestions: ['Name the model by its path inside the run, e.g. runs:/<run_id>/model.'],
    },
  )
}

/**
 * A local artifact location (file: or a plain path) a tracking store handed back must be one mlflow makes:
 * `<experiment location>/<run id>/artifacts` for a run, `.../models/<model id>/artifacts` for a logged
 * model (`owner`: that id), below them for a registered version's source, and never with `..` segments.
 * Anything else (`file:///`, `/etc`) would copy a directory the store does not own into the model cache.
 */
export function checkLocalArtifactLocation(uri: string, what: string, owner?: string): void {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]+):/.exec(uri)?.[1]?.toLowerCase()
  if (scheme !== undefined && scheme !== 'file') return
  const segments = uri
    .replace(/^file:(\/\/[^/]*)?/i, '')
    .split('/')
    .filter((segment) => segment !== '')
  const at = segments.lastIndexOf('artifacts')
  const owned = owner === undefined ? at >= 2 : at === segments.length - 1 && segments[at - 1] === owner
  if (owned && !segments.some((segment) => segment !== '.' && isDotSegment(segment))) return
  throw new MlserveError(
    'UNSAFE_ARTIFACT_PATH',
    `Refusing to copy ${uri}, the local artifact location the tracking store gave for ${what}: it is not inside a run's or a model's artifacts directory.`,
    {
      suggestions: [
        `mlflow stores artifacts under <artifact root>/${owner ?? '<run or model id>'}/artifacts; check the tracking server (MLFLOW_TRACKING_URI) and the run's artifact_uri.`,
      ],
    },
  )
}
