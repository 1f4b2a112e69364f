// docs/flags.md's flag table is generated from serve's flag declarations, and CI fails when it is stale.
import {readFileSync} from 'node:fs'

import t from 'tap'

import {BEGIN_MARKER, END_MARKER, flagTable, withFlagTable} from '../../../src/cli/flag-reference.js'
import {serveFlags} from '../../../src/cli/serve-flags.js'

const PAGE = new URL('../../../docs/flags.md', import.meta.url)

t.test('docs/flags.md holds the flag table its declarations give (else: npm run docs:flags)', async (t) => {
  const page = readFileSync(PAGE, 'utf8')
  const fresh = withFlagTable(page, flagTable(serveFlags))
  t.not(fresh, undefined, `docs/flags.md has the markers ${BEGIN_MARKER} ... ${END_MARKER}`)
  t.ok(fresh === page, "docs/flags.md's flag table is stale: run `npm run docs:flags` and commit docs/flags.md")
})

t.test('a row says the flag, its default (booleans: on/off), its variable and its help', async (t) => {
  const table = flagTable({
    port: {type: 'option', char: 'p', default: 5000, env: 'MLFLOW_PORT', summary: 'The port | a pipe.'},
    warmup: {type: 'boolean', allowNo: true, default: true, summary: 'Warm up.', description: 'More.'},
    'model-uri': {type: 'option', char: 'm', required: true, summary: 'The model.'},
  })
  t.same(table.split('\n').slice(2), [
    '| `-p, --port` | `5000` | `MLFLOW_PORT` | The port \\| a pipe. |',
    '| `--[no-]warmup` | on |  | Warm up. More. |',
    '| `-m, --model-uri` | required |  | The model. See [Model URIs](model-uris.md). |',
  ])
})

t.test('the table replaces only what lies between the markers', async (t) => {
  const readme = `before\n${BEGIN_MARKER}\nold\n${END_MARKER}\nafter\n`
  t.equal(withFlagTable(readme, 'new'), `before\n${BEGIN_MARKER}\nnew\n${END_MARKER}\nafter\n`)
  t.equal(withFlagTable('no markers', 'new'), undefined)
})
