// The registry patterns followed while serving: matches added, models that stop matching removed, names
// served otherwise never touched, a model whose lookup failed kept, a failed search changing nothing.
import t from 'tap'

import {parseModelPattern} from '../../../src/serve/model-patterns.js'
import type {ModelSpec} from '../../../src/serve/model-specs.js'
import type {ServedEntry} from '../../../src/serve/models.js'
import {PatternFollower, type ModelSet} from '../../../src/serve/pattern-follower.js'
import type {PatternMatches} from '../../../src/serve/pattern-search.js'

const pattern = parseModelPattern('models:/*@champion')
const spec = (name: string): ModelSpec => ({name, uri: `models:/${name}@champion`, settings: {}})

function fakeTable(names: string[]) {
  const entries = names.map((name) => ({name, spec: spec(name)}) as unknown as ServedEntry)
  const log: string[] = []
  const table = {
    entries,
    get: (name: string) => entries.find((entry) => entry.name === name),
    add(added: ModelSpec) {
      entries.push({name: added.name, spec: added} as unknown as ServedEntry)
      log.push(`add ${added.name}`)
    },
    async remove(name: string) {
      entries.splice(
        entries.findIndex((entry) => entry.name === name),
        1,
      )
      log.push(`remove ${name}`)
    },
  }
  return {table: table as unknown as ModelSet, log, names: () => entries.map((entry) => entry.name)}
}

t.test('a check adds new matches and removes what no longer matches; fixed and unknown names stay', async (t) => {
  const {table, log, names} = fakeTable(['fixed', 'a', 'b', 'flaky'])
  let answer: PatternMatches | Error = {specs: [spec('a'), spec('c')], unmatched: [], unknown: new Set(['flaky'])}
  let failures = 0
  const follower = new PatternFollower({
    patterns: [pattern],
    fixed: new Set(['fixed']),
    table,
    context: {cwd: '.', log: {info() {}, warn() {}, phase: () => ({done: () => 0})}},
    intervalMs: 0,
    log: {info() {}, warn() {}, phase: () => ({done: () => 0})},
    onCheckFailed: () => failures++,
    match: async () => {
      if (answer instanceof Error) throw answer
      return answer
    },
  })
  await follower.request()
  await follower.stop()
  t.same(log, ['remove b', 'add c'])
  t.same(names(), ['fixed', 'a', 'flaky', 'c'], '"fixed" is not a match but is served otherwise; "flaky" could not be looked up')

  const again = new PatternFollower({...(follower as unknown as {options: ConstructorParameters<typeof PatternFollower>[0]}).options})
  answer = new Error('tracking server down')
  await again.request()
  t.equal(failures, 1, 'a failed search is counted')
  t.same(names(), ['fixed', 'a', 'flaky', 'c'], 'and changes nothing')
  await again.stop()
})
