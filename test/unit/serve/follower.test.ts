// The follower's decisions with a scripted reference: what is unchanged, what is reloaded, what is not
// tried again after a failure (until the reference moves or SIGHUP), and one check at a time.
import t from 'tap'

import {Follower, type FollowerOptions, type ReloadOutcome} from '../../../src/serve/follower.js'
import type {ModelTarget} from '../../../src/uri/resolve.js'

const version = (v: string): ModelTarget => ({
  key: `models:/m/${v}`,
  fixedUri: `models:/m/${v}`,
  moving: true,
  local: false,
  registered: {name: 'm', version: v},
})

/** A follower whose reference names `names[i]` at the i-th check (the last one after that). */
function follower(script: {names: Array<string | Error>; failing?: Set<string>; options?: Partial<FollowerOptions>}) {
  let served = 'models:/m/1'
  let checks = 0
  const outcomes: ReloadOutcome[] = []
  const reloads: string[] = []
  const lines: string[] = []
  let checkFailures = 0
  let release: (() => void) | undefined
  const instance = new Follower({
    uri: 'models:/m@champion',
    intervalMs: 0,
    moving: true,
    log: {info: (line: string) => lines.push(line), warn: (line: string) => lines.push(`warning: ${line}`), phase: () => ({done: () => 0})},
    async lookUp() {
      const name = script.names[Math.min(checks++, script.names.length - 1)]!
      if (name instanceof Error) throw name
      return version(name)
    },
    currentKey: () => served,
    async reload(target) {
      reloads.push(target.registered!.version)
      if (script.options?.intervalMs === -1) await new Promise<void>((resolve) => (release = resolve))
      if (script.failing?.has(target.registered!.version)) throw new Error('the environment cannot be built')
      served = target.key
    },
    onOutcome: (outcome) => outcomes.push(outcome),
    onCheckFailed: () => checkFailures++,
    ...script.options,
    ...(script.options?.intervalMs === -1 ? {intervalMs: 0} : {}),
  })
  /** One check, awaited. */
  const check = async (forced = false) => instance.request(forced)

  return {instance, outcomes, reloads, lines, check, checkFailures: () => checkFailures, release: () => release?.()}
}

t.test('the same version is unchanged; a new one is reloaded', async (t) => {
  const f = follower({names: ['1', '2', '2']})
  await f.check()
  await f.check()
  await f.check()
  t.same(f.outcomes, ['unchanged', 'switched', 'unchanged'])
  t.same(f.reloads, ['2'])
})

t.test('a failed version is not tried again until the reference moves, or SIGHUP asks', async (t) => {
  const f = follower({names: ['3', '3', '3', '1', '3', '3'], failing: new Set(['3'])})
  await f.check()
  t.match(f.lines.at(-1), /^warning: reload of models:\/m@champion \(version 3 of m\) failed.*not trying it again.*cannot be built/)
  await f.check()
  t.same(f.reloads, ['3'], 'the same target is skipped')
  await f.check(true)
  t.same(f.reloads, ['3', '3'], 'SIGHUP tries it again')
  await f.check()
  t.same(f.outcomes, ['failed', 'unchanged', 'failed', 'unchanged'], 'back on the served version')
  await f.check()
  t.same(f.reloads, ['3', '3', '3'], 'the reference moved away and back: tried again')
  t.same(f.outcomes.at(-1), 'failed')
})

t.test('a failed lookup is counted and reloads nothing', async (t) => {
  const f = follower({names: [new Error('connection refused'), '1']})
  await f.check()
  t.equal(f.checkFailures(), 1)
  t.same(f.outcomes, [])
  t.match(f.lines.at(-1), /^warning: reload check of models:\/m@champion failed, still serving what was served: connection refused/)
  await f.check()
  t.same(f.outcomes, ['unchanged'])
})

t.test('one check at a time: asks during a reload are taken once, after it', async (t) => {
  const f = follower({names: ['2', '3'], options: {intervalMs: -1}})
  void f.instance.request(false)
  await new Promise((resolve) => setTimeout(resolve, 10))
  void f.instance.request(false)
  void f.instance.request(false)
  t.same(f.reloads, ['2'], 'the second check waits')
  f.release()
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(f.reloads, ['2', '3'], 'one more check ran after the reload, and found the newer target')
  f.release()
  await f.instance.stop()
  t.same(f.outcomes, ['switched', 'switched'])
})

t.test('a fixed reference with an interval: nothing to follow, no checks', async (t) => {
  const f = follower({names: ['1'], options: {moving: false, intervalMs: 1000}})
  f.instance.start()
  t.match(f.lines, [/models:\/m@champion is a fixed reference, nothing to follow \(SIGHUP still reloads it\)/])
  await f.instance.stop()
  t.same(f.outcomes, [])
})

t.test('a local directory reloads on SIGHUP only when what it holds changed (its key)', async (t) => {
  let reloaded = 0
  let key = '/models/m#1'
  const instance = new Follower({
    uri: '/models/m',
    intervalMs: 0,
    moving: false,
    log: {info() {}, warn() {}, phase: () => ({done: () => 0})},
    lookUp: async () => ({key, fixedUri: '/models/m', moving: false, local: true}),
    currentKey: () => '/models/m#1',
    async reload() {
      reloaded++
    },
  })
  await instance.request(true)
  t.equal(reloaded, 0, 'SIGHUP with the same files: unchanged (the front door re-reads its keys alone)')
  key = '/models/m#2'
  await instance.request(false)
  t.equal(reloaded, 1, 'changed files: reloaded')
})

t.test('a reload that never ends is cancelled by a newer target (and by SIGHUP); the newer one is prepared at once', async (t) => {
  let names = ['2']
  const reloads: string[] = []
  const cancelled: string[] = []
  const outcomes: ReloadOutcome[] = []
  const lines: string[] = []
  let served = 'models:/m/1'
  const instance = new Follower({
    uri: 'models:/m@champion',
    intervalMs: 0,
    moving: true,
    log: {info: (line: string) => lines.push(line), warn: (line: string) => lines.push(`warning: ${line}`), phase: () => ({done: () => 0})},
    lookUp: async () => version(names.shift() ?? '3'),
    currentKey: () => served,
    async reload(target, signal) {
      const v = target.registered!.version
      reloads.push(v)
      if (v === '3') {
        served = target.key
        return
      }

      // An environment build that hangs: it ends only when aborted.
      await new Promise<void>((_resolve, reject) => {
        signal.addEventListener('abort', () => {
          cancelled.push(v)
          reject(new Error('aborted'))
        })
      })
    },
    onOutcome: (outcome) => outcomes.push(outcome),
  })
  const first = instance.request(false)
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(reloads, ['2'], 'version 2 is being prepared (and hangs)')
  names = ['3']
  await instance.request(false)
  await first
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(cancelled, ['2'], 'the hanging build of version 2 is aborted')
  t.same(reloads, ['2', '3'], 'version 3 is prepared without waiting for it')
  t.equal(served, 'models:/m/3')
  t.same(outcomes, ['switched'], 'the cancelled reload is no failure')
  t.match(lines, [/reload of models:\/m@champion \(version 2 of m\) cancelled: .*version 3 of m/])

  // SIGHUP while a build hangs: it is cancelled and the check runs again at once.
  names = ['2', '2']
  served = 'models:/m/1'
  const hanging = instance.request(false)
  await new Promise((resolve) => setTimeout(resolve, 10))
  await instance.request(true)
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(cancelled, ['2', '2'], 'SIGHUP aborts the build in progress')
  t.same(reloads.slice(2), ['2', '2'], 'and the reference is checked and prepared again')
  names = ['3']
  await instance.request(false)
  await hanging
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(served, 'models:/m/3', 'then the newer target again cancels that one and is served')
  await instance.stop()
})
