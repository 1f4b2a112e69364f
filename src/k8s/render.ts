// Manifests to YAML bytes: js-yaml with fixed options, so the same options always give the same bytes.
import {dump} from 'js-yaml'

import type {Manifest} from './kubernetes.js'

/** One document, keys in the order the builders wrote them, no anchors, no line folding. */
export function renderManifest(manifest: Manifest): string {
  return dump(manifest.object, {noRefs: true, lineWidth: -1, sortKeys: false, quotingType: '"'})
}

/** Several documents in one stream (stdout), separated by `---`. */
export function renderStream(manifests: readonly Manifest[]): string {
  return manifests.map((manifest) => `---\n${renderManifest(manifest)}`).join('')
}
