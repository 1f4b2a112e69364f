// Registry patterns: which -m values are patterns, their syntax (usage errors, exit 2), matching over
// registered-model names, and how they join the selection (-m, --models) and the URIs of their matches.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {selectModels} from '../../../src/cli/serve-flags/multi-model.js'
import {isModelPattern, matchesPattern, parseModelPattern, uriOfMatch} from '../../../src/serve/model-patterns.js'
import {parseModelArg} from '../../../src/serve/model-specs.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-patterns-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))

t.test('a models:/ name with * or ? is a pattern; nothing else is', async (t) => {
  for (const uri of ['models:/*@champion', 'models:/fraud-*/Production', 'models:/*/latest', 'models:/fraud-?@x', 'models:/*'])
    t.ok(isModelPattern(uri), uri)
  for (const uri of ['models:/fraud@champion', 'models:/fraud/3', './models/*', 's3://b/*', 'runs:/abc/model', 'models:/fraud@c*'])
    t.notOk(isModelPattern(uri), uri)
})

t.test('alias, stage and latest patterns; their matches and URIs', async (t) => {
  const alias = parseModelPattern('models:/*@champion')
  t.match(alias, {glob: '*', suffix: '@champion'})
  t.ok(matchesPattern(alias, 'fraud'))
  t.ok(matchesPattern(alias, 'a.b-c_d'))
  t.equal(uriOfMatch(alias, 'fraud'), 'models:/fraud@champion')

  const stage = parseModelPattern('models:/fraud-*/Production')
  t.equal(stage.suffix, '/Production')
  t.ok(matchesPattern(stage, 'fraud-eu'))
  t.ok(matchesPattern(stage, 'fraud-'), '* matches nothing too')
  t.notOk(matchesPattern(stage, 'Fraud-eu'), 'case-sensitive')
  t.notOk(matchesPattern(stage, 'xfraud-eu'), 'anchored at the start')
  t.equal(uriOfMatch(stage, 'fraud-eu'), 'models:/fraud-eu/Production')

  const one = parseModelPattern('models:/m?/LATEST')
  t.equal(one.suffix, '/latest')
  t.ok(matchesPattern(one, 'm1'))
  t.notOk(matchesPattern(one, 'm12'), '? is one character')
  t.notOk(matchesPattern(one, 'm'))

  const dots = parseModelPattern('models:/a.b*@x')
  t.ok(matchesPattern(dots, 'a.bc'))
  t.notOk(matchesPattern(dots, 'aXbc'), '. is literal')
})

t.test('bad patterns are usage errors (exit 2) that say what is wrong', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['models:/*', /names an alias, a stage or latest/],
    ['models:/fraud-*[ab]@x', /only \* and \? are wildcards/],
    ['models:/{a,b}*@x', /only \* and \? are wildcards/],
    ['models:/*/3', /not version 3 of every model/],
    ['models:/*@', /not one alias, stage or latest/],
    ['models:/*/Production/x', /not one alias, stage or latest/],
    ['models:/*@c*', /wildcards go in the model name only/],
  ]
  for (const [pattern, message] of cases) t.throws(() => parseModelPattern(pattern), {exitCode: 2, message}, pattern)

  t.throws(() => parseModelArg('x=models:/*@champion'), {exitCode: 2, message: /takes no NAME=/}, 'NAME= on a pattern')
})

t.test('patterns join the selection: one pattern is several models; --models entries may be patterns with settings', async (t) => {
  t.match(await selectModels({'model-uri': ['models:/*@champion'], strict: false}), {
    kind: 'multi',
    models: [],
    patterns: [{pattern: 'models:/*@champion', suffix: '@champion'}],
  })
  const file = path.join(scratch, 'models.yaml')
  writeFileSync(file, '- uri: models:/fraud-*/Production\n  workers: 2\n- name: sum\n  uri: ./sum\n')
  const selection = await selectModels({'model-uri': ['models:/*@champion'], models: file, 'default-model': 'fraud-eu', strict: true})
  t.match(selection, {
    kind: 'multi',
    models: [{name: 'sum', uri: './sum'}],
    patterns: [{glob: '*'}, {glob: 'fraud-*', suffix: '/Production', settings: {workers: 2}}],
    defaultModel: 'fraud-eu',
  })
  writeFileSync(file, '- uri: models:/*@champion\n  name: x\n')
  await t.rejects(selectModels({models: file, strict: false}), /registry pattern: each match is served under its registered name, drop name:/)
  writeFileSync(file, '- uri: models:/*/7\n')
  await t.rejects(selectModels({models: file, strict: false}), /entry 1: models:\/\*\/7: a pattern follows an alias/)
})
