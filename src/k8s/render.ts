// Manifests to YAML bytes: js-yaml with fixed options, so the same options always give the same bytes.
import {DEFAULT_SCHEMA, Type, dump} from 'js-yaml'

import type {Manifest} from './kubernetes.js'

/**
 * Plain scalars a YAML 1.1 reader (PyYAML; go-yaml v2, which kubectl uses) resolves to something other
 * than a string: the resolvers of the YAML 1.1 type repository (int, float, bool, null, timestamp,
 * merge, value) with go-yaml's `y`/`n` booleans. js-yaml writes YAML 1.2 and quotes only what 1.2
 * would retype, so `1_000`, `0x_1F`, `1.0_0` or `0b1_0` went out plain and came back numbers.
 */
const YAML11_RETYPED = [
  /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?0o[0-7_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/,
  /^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
  /^(?:~|null|Null|NULL|)$/,
  /^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$/,
  /^(?:<<|=)$/,
]

/**
 * A type that is never written (no `instanceOf`/`predicate`) but that the dumper asks about every plain
 * string it is about to write: claiming the YAML 1.1 forms makes js-yaml quote them, keys included.
 */
const yaml11Scalar = new Type('tag:mlserve.dev,2026:yaml11-scalar', {
  kind: 'scalar',
  resolve: (text: string | null) => text !== null && YAML11_RETYPED.some((pattern) => pattern.test(text)),
})

const DUMP_SCHEMA = DEFAULT_SCHEMA.extend({implicit: [yaml11Scalar]})

/** One document, keys in the order the builders wrote them, no anchors, no line folding. */
export function renderManifest(manifest: Manifest): string {
  return dump(manifest.object, {schema: DUMP_SCHEMA, noRefs: true, lineWidth: -1, sortKeys: false, quotingType: '"'})
}

/** Several documents in one stream (stdout), separated by `---`. */
export function renderStream(manifests: readonly Manifest[]): string {
  return manifests.map((manifest) => `---\n${renderManifest(manifest)}`).join('')
}
