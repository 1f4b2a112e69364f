// The switchboard: new requests go to the serving generation, a lease goes back to the generation that lent it,
// a switch retires the old generation, and the counts /readyz and /metrics read span every generation.
import t from 'tap'

import type {ServingSet} from '../../../src/serve/generation.js'
import {Switchboard} from '../../../src/serve/switchboard.js'
import type {ExchangeOutcome, Lease} from '../../../src/upstream.js'

/** A generation whose supervisor records what it is asked, with `ready` ready scorers. */
function generation(version: string, ready = 1) {
  const calls: string[] = []
  const leases = new Set<unknown>()
  const supervisor = {
    acquire() {
      const lease = {version}
      leases.add(lease)
      calls.push('acquire')
      return {lease}
    },
    owns: (lease: unknown) => leases.has(lease),
    share: (lease: Lease) => lease,
    release: () => calls.push('release'),
    cancel: () => calls.push('cancel'),
    counts: () => ({starting: 0, ready, retiring: 0}),
    queueDepth: 1,
    outstanding: 2,
    unhealthy: undefined,
    mode: 'spawn',
    async retireAll() {
      calls.push('retireAll')
      return []
    },
    async stop() {
      calls.push('stop')
      return []
    },
    killNow: () => calls.push('killNow'),
  }
  const set = {
    served: {uri: 'models:/m@a', version, generation: Number(version), label: version},
    supervisor,
    async release() {
      calls.push('env released')
    },
  }
  return {set: set as unknown as ServingSet, calls}
}

const done = {} as ExchangeOutcome

t.test('a switch: new requests to the new generation, the old one drains, then its environment is released', async (t) => {
  const one = generation('1')
  const two = generation('2')
  const board = new Switchboard(one.set)
  const {lease} = board.acquire() as unknown as {lease: Lease}
  t.equal(board.served.version, '1')

  board.prepare(two.set)
  t.same(board.counts(), {starting: 1, ready: 1, retiring: 0}, 'a generation being prepared counts as starting')
  await board.switchTo(two.set, 1000, 1000)
  t.equal(board.served.version, '2', 'new requests go to the new generation')
  t.same(one.calls, ['acquire', 'retireAll', 'env released'], 'the old one drained, then its environment was released')

  board.release(lease, done)
  t.same(two.calls, ['release'], 'once its generation is gone, a late lease falls back to the serving one')
  t.same(board.counts(), {starting: 0, ready: 1, retiring: 0})
})

t.test('while a generation retires, its ready scorers count as retiring and its work as outstanding', async (t) => {
  const one = generation('1', 2)
  const two = generation('2', 3)
  const board = new Switchboard(one.set)
  let finishRetiring!: () => void
  one.set.supervisor.retireAll = async () => {
    await new Promise<void>((resolve) => (finishRetiring = resolve))
    return []
  }

  const {lease} = board.acquire() as unknown as {lease: Lease}
  const switched = board.switchTo(two.set, 1000, 1000)
  board.release(lease, done)
  t.same(one.calls, ['acquire', 'release'], 'a lease of the retiring generation goes back to it')
  one.calls.length = 0
  t.same(board.counts(), {starting: 0, ready: 3, retiring: 2})
  t.equal(board.queueDepth, 2)
  t.equal(board.outstanding, 4)
  board.cancel(Promise.resolve({} as never))
  t.same([one.calls, two.calls], [['cancel'], ['cancel']], 'a cancel reaches every generation')
  finishRetiring()
  await switched
  t.same(board.counts(), {starting: 0, ready: 3, retiring: 0})
})

t.test('a switch after stop never serves: the new generation is stopped and released', async (t) => {
  const one = generation('1')
  const two = generation('2')
  const board = new Switchboard(one.set)
  await board.stop(0)
  await board.switchTo(two.set, 1000, 1000)
  t.equal(board.served.version, '1')
  t.same(two.calls, ['stop', 'env released'])
})
