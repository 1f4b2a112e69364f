// The lifecycle without scorers: which model is unloaded for which load, busy models kept, loads waiting
// for room holding none, and the 503 of a full per-model queue.
import t from 'tap'

import {ModelPool} from '../../../src/serve/model-pool.js'
import type {ServedEntry} from '../../../src/serve/models.js'

const quiet = {info() {}, warn() {}, phase: () => ({done: () => 0})}

/** A stand-in model whose load and unload take one tick and are written to `events`. */
function fake(name: string, events: string[], state: ServedEntry['state'] = 'unloaded', lastUsed = 0): ServedEntry {
  const entry = {
    name,
    state,
    busy: 0,
    lastUsed,
    memory: undefined,
    error: undefined,
    options: {maxQueue: 4},
    log: quiet,
    pids: () => [],
    touch() {
      entry.lastUsed = performance.now()
    },
    async load() {
      if (entry.state !== 'unloaded') return false
      entry.state = 'loading'
      await new Promise((resolve) => setImmediate(resolve))
      entry.state = 'loaded'
      events.push(`load ${name}`)
      return true
    },
    async unload() {
      entry.state = 'unloaded'
      events.push(`unload ${name}`)
    },
    async stop() {},
    killNow() {},
  }
  return entry as unknown as ServedEntry
}

function pool(maxLoaded: number, ...entries: ServedEntry[]) {
  const context = {log: quiet, stopGraceMs: 0} as unknown as ConstructorParameters<typeof ModelPool>[0]
  const made = new ModelPool(context, {maxLoaded, maxLoading: 2, strict: false}, '/nonexistent', new AbortController().signal, () => {
    throw new Error('not used')
  })
  made.entries.push(...entries)
  return made
}

const ticks = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve)) // eslint-disable-line no-await-in-loop
}

t.test('the least recently used idle model is unloaded for a load; a busy one never', async (t) => {
  const events: string[] = []
  const [a, b, c] = [fake('a', events, 'loaded', 1), fake('b', events, 'loaded', 2), fake('c', events)]
  const models = pool(2, a, b, c)
  t.equal(await models.load(c), true)
  t.same(events, ['unload a', 'load c'], 'a, used longest ago, made room')
  a.busy = 0
  b.busy = 1
  t.equal(await models.load(a), true)
  t.same(events.slice(2), ['unload c', 'load a'], 'b has a request in flight: c goes although b was used before it')
})

t.test('loads waiting for room hold none: two wait behind a busy model, then both load in turn', async (t) => {
  const events: string[] = []
  const [a, b, c] = [fake('a', events, 'loaded', 1), fake('b', events), fake('c', events)]
  a.busy = 1
  const models = pool(1, a, b, c)
  const loads = [models.load(b), models.load(c)]
  await ticks(20)
  t.same(events, [], 'a is busy: nothing is unloaded')
  a.busy = 0
  models.roomChanged()
  t.same(await Promise.all(loads), [true, true], 'both loaded (before: each counted the other as loaded and waited 30 s)')
  t.same(events, ['unload a', 'load b', 'unload b', 'load c'])
})

t.test('two measures at once over --max-memory unload one model, not one each', async (t) => {
  const events: string[] = []
  // Each stand-in model is measured as this test's own process: real PSS, the same for each.
  const entries = [fake('a', events, 'loaded', 1), fake('b', events, 'loaded', 2), fake('c', events, 'loaded', 3)]
  for (const entry of entries) Object.assign(entry, {pids: () => [process.pid]})
  const once = await pool(3, ...entries).measure()
  const models = new ModelPool(
    {log: quiet, stopGraceMs: 0} as unknown as ConstructorParameters<typeof ModelPool>[0],
    {maxLoaded: 3, maxLoading: 2, strict: false, maxMemory: Math.round((once.total * 2.5) / 3)},
    '/nonexistent',
    new AbortController().signal,
    () => {
      throw new Error('not used')
    },
  )
  models.entries.push(...entries)
  await Promise.all([models.measure(), models.measure()])
  await ticks(5)
  t.same(events, ['unload a'], 'a, used longest ago, went; b stays (the second measure read a as loaded too)')
})

t.test('a full queue for a model being loaded: 503 with Retry-After in MLflow envelope', async (t) => {
  const events: string[] = []
  const a = fake('a', events)
  ;(a.options as {maxQueue: number}).maxQueue = 0
  const refusal = await pool(1, a).admit(a)
  t.match(refusal, {status: 503, headers: {'retry-after': '1'}, body: /"error_code": "TEMPORARILY_UNAVAILABLE".*--max-queue/})
  t.same(events, [], 'nothing loaded')
})

t.test('startAll says "prepared" once every model is prepared or failed preparing, not before', async (t) => {
  const events: string[] = []
  const gates = new Map<string, () => void>()
  const preparing = (name: string, outcome: ServedEntry['state']) => {
    const entry = fake(name, events, 'loading')
    Object.assign(entry, {
      async prepare() {
        await new Promise<void>((resolve) => gates.set(name, resolve))
        entry.state = outcome
      },
    })
    return entry
  }

  const models = pool(2, preparing('a', 'unloaded'), preparing('b', 'failed'))
  let prepared = 0
  const started = models.startAll(() => prepared++)
  await ticks(3)
  gates.get('a')!()
  await ticks(3)
  t.equal(prepared, 0, 'b is still being prepared')
  gates.get('b')!()
  await started
  t.equal(prepared, 1, 'once, when b failed preparing')
  t.same(events, ['load a'], 'a was loaded (eager), b was not')
  t.equal(
    await (async () => {
      let none = 0
      await pool(2).startAll(() => none++)
      return none
    })(),
    1,
    'no model: prepared at once',
  )
})
