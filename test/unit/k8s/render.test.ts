// generate-k8s's YAML read by a YAML 1.1 reader (PyYAML; go-yaml v2 under kubectl is alike): every string comes back a string.
import {execFileSync} from 'node:child_process'

import t from 'tap'

import {renderManifest} from '../../../src/k8s/render.js'
import {toolchainPython} from '../../helpers/toolchain.js'

/** Strings YAML 1.1 resolves to something else when plain (ints, floats, booleans, null, timestamps, merge, value). */
const RETYPED = [
  '1_000',
  '0x_1F',
  '0x1F',
  '1.0_0',
  '0b1_0',
  '0b10',
  '017',
  '+1',
  '-0',
  '1:20',
  '190:20:30',
  '1:20.5',
  '.5',
  '1.',
  '1e3',
  '1.5e+3',
  '.inf',
  '-.Inf',
  '+.INF',
  '.nan',
  '.NaN',
  'yes',
  'Yes',
  'YES',
  'no',
  'No',
  'on',
  'On',
  'OFF',
  'off',
  'y',
  'Y',
  'n',
  'N',
  'true',
  'False',
  '~',
  'null',
  'Null',
  'NULL',
  '',
  '2001-12-14',
  '2001-12-14t21:59:43.10-05:00',
  '2001-12-14 21:59:43.10 -5',
  '<<',
  '=',
  '0o17',
  '1_2_3.4_5',
]
/** Strings that stay strings: they must still be written plain (no needless quotes). */
const PLAIN = ['iris', 'apps/v1', '1Gi', '500m', 'python:3.11-slim', 'v1.2.3']

// prettier-ignore
const python = `
import json, sys, yaml
doc = yaml.load(sys.stdin.read(), Loader=yaml.SafeLoader)
json.dump(doc, sys.stdout, default=repr)
`

function readBack(yamlText: string): unknown {
  return JSON.parse(execFileSync(toolchainPython(), ['-c', python], {input: yamlText, encoding: 'utf8'}))
}

t.test('every string YAML 1.1 would retype is quoted: PyYAML reads each value and key back as the same string', async (t) => {
  const values = [...RETYPED, ...PLAIN]
  const keyed = Object.fromEntries(values.filter((v) => v !== '').map((v) => [v, v]))
  const object = {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'x', annotations: keyed}, list: values}
  const text = renderManifest({file: 'x.yaml', object})
  const back = readBack(text) as {list: unknown[]; metadata: {annotations: Record<string, unknown>}}
  t.same(back.list, values, 'values')
  t.same(back.metadata.annotations, keyed, 'keys and values of a mapping')
  for (const plain of PLAIN) t.match(text, new RegExp(`^ {2}- ${plain.replaceAll('.', '\\.')}$`, 'm'), `${plain} stays plain`)
})
