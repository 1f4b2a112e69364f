// The eviction policy: least recently used idle models first, busy ones never, only as many as the limits need.
import t from 'tap'

import {chooseEvictions, expectedMemory, type LoadedModel} from '../../../src/serve/lru.js'

const model = (name: string, lastUsed: number, memory = 0, busy = 0): LoadedModel => ({name, lastUsed, memory, busy})
const names = (models: readonly LoadedModel[] | undefined) => models?.map((m) => m.name)

t.test('under the limits: nothing is evicted', async (t) => {
  t.same(chooseEvictions([model('a', 1), model('b', 2)], {maxLoaded: 3, loaded: 2, memory: 0}, 0), [])
  t.same(chooseEvictions([model('a', 1)], {loaded: 1, memory: 10}, 10), [], 'no limit at all')
})

t.test('--max-loaded: the least recently used idle model goes', async (t) => {
  const loaded = [model('new', 30), model('old', 10), model('mid', 20)]
  t.same(names(chooseEvictions(loaded, {maxLoaded: 3, loaded: 3, memory: 0}, 0)), ['old'])
  t.same(names(chooseEvictions(loaded, {maxLoaded: 2, loaded: 3, memory: 0}, 0)), ['old', 'mid'], 'as many as needed, oldest first')
})

t.test('a model with requests in flight or queued is never evicted', async (t) => {
  const loaded = [model('old', 10, 0, 1), model('mid', 20)]
  t.same(names(chooseEvictions(loaded, {maxLoaded: 2, loaded: 2, memory: 0}, 0)), ['mid'], 'the busy oldest one stays')
  t.equal(chooseEvictions([model('a', 1, 0, 2)], {maxLoaded: 1, loaded: 1, memory: 0}, 0), undefined, 'no room: wait')
})

t.test('--max-memory: enough idle models go for the incoming one to fit', async (t) => {
  const loaded = [model('a', 1, 300), model('b', 2, 300), model('c', 3, 300)]
  t.same(names(chooseEvictions(loaded, {maxMemory: 1000, loaded: 3, memory: 900}, 100)), [], 'fits as is')
  t.same(names(chooseEvictions(loaded, {maxMemory: 1000, loaded: 3, memory: 900}, 300)), ['a'])
  t.same(
    names(chooseEvictions(loaded, {maxMemory: 1000, loaded: 3, memory: 1000}, 500)),
    ['a', 'b'],
    'memory beyond the models (shared processes) counts',
  )
  t.same(
    names(chooseEvictions(loaded, {maxMemory: 1000, loaded: 3, memory: 900}, 2000)),
    ['a', 'b', 'c'],
    'alone, one larger than the cap still loads',
  )
  t.equal(chooseEvictions([model('a', 1, 300, 1)], {maxMemory: 500, loaded: 1, memory: 300}, 300), undefined, 'the only other one is busy')
})

t.test('both limits: the one that needs more evictions decides', async (t) => {
  const loaded = [model('a', 1, 100), model('b', 2, 800)]
  t.same(names(chooseEvictions(loaded, {maxLoaded: 2, maxMemory: 1000, loaded: 2, memory: 900}, 300)), ['a', 'b'], 'a is not enough for memory')
  t.same(
    names(chooseEvictions(loaded, {maxLoaded: 1, maxMemory: 10_000, loaded: 2, memory: 900}, 300)),
    ['a', 'b'],
    'two must go for --max-loaded 1',
  )
})

t.test('the expected size of a model not measured: its last measure, else the mean of the measured ones', async (t) => {
  t.equal(expectedMemory(500, [model('a', 1, 100)]), 500)
  t.equal(expectedMemory(undefined, [model('a', 1, 100), model('b', 1, 300), model('c', 1, 0)]), 200)
  t.equal(expectedMemory(undefined, []), 0)
})
