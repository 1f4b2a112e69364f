// What a model URI may show on mlserve's public port (/readyz, /metrics): no credentials, no host paths.
import path from 'node:path'

import {uriScheme} from './parse.js'
import {redactUri} from './tracking.js'

/**
 * A local model (a path as typed, or a file: URI) by the name of its directory only (`/home/alice/models/iris`:
 * `iris`); any other URI (runs:/, models:/, s3://, https://) as given, without its credentials.
 */
export function publicModelUri(uri: string, localDir: string): string {
  const scheme = uriScheme(uri)
  return scheme === undefined || scheme === 'file' ? path.basename(localDir) : redactUri(uri)
}
