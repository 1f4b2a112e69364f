// Image references (--base-image, -n/--name) checked against the Docker reference grammar before any work.
import {MlserveError} from '../errors.js'

// The grammar of github.com/distribution/reference (regexp.go), the one the Docker daemon parses.
const alphanumeric = '[a-z0-9]+'
const separator = '(?:[._]|__|[-]+)'
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])`
const domain = `${host}(?::[0-9]+)?`
const name = `(?:${domain}/)?${pathComponent}(?:/${pathComponent})*`
const tag = '[\\w][\\w.-]{0,127}'
const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'
const REFERENCE = new RegExp(`^(${name})(?::${tag})?(?:@${digest})?$`)
/** The longest repository name the daemon accepts. */
const NAME_MAX = 255

/** Whether `reference` is `[host[:port]/]path[:tag][@digest]` as Docker reads it (lower-case path, no spaces, no shell). */
export function isImageReference(reference: string): boolean {
  const match = REFERENCE.exec(reference)
  return match !== null && (match[1]?.length ?? 0) <= NAME_MAX
}

/**
 * Throws INVALID_ARGUMENT naming `flag` unless `reference` is a Docker image reference: the value goes into
 * a Dockerfile's FROM and RUN lines and the daemon's tag, where a newline would add instructions and
 * `$(...)` would run on the build.
 */
export function checkImageReference(reference: string, flag: string): void {
  if (isImageReference(reference)) return
  throw new MlserveError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(reference)} is not a valid image reference.`, {
    suggestions: [
      'An image reference is [registry[:port]/]name[:tag][@digest]: lower-case name components, a tag of letters, digits, `_`, `.` and `-`, no spaces, quotes or shell syntax (e.g. python:3.11-slim, registry.example.com/team/model:1).',
    ],
  })
}
