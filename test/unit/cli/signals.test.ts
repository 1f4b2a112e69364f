// SIGINT/SIGTERM in long-running commands: the first asks the work to stop, the second stops at once even
// when the work waits on something that watches no signal (a read that cannot be aborted).
import t from 'tap'

import {withStopSignals} from '../../../src/cli/signals.js'
import {createLogger} from '../../../src/log.js'

const logger = () => {
  const lines: string[] = []
  return {lines, log: createLogger({write: (chunk: string) => lines.push(chunk)})}
}

/** Sends `signal` to this process and waits until the handler logged it (two signals sent at once may arrive as one). */
async function send(signal: NodeJS.Signals, lines: string[]): Promise<void> {
  const before = lines.length
  process.kill(process.pid, signal)
  // eslint-disable-next-line no-await-in-loop
  while (lines.length === before) await new Promise((resolve) => setTimeout(resolve, 5))
}

t.test('the second signal ends a work that ignores both with INTERRUPTED, at once', async (t) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const {lines, log} = logger()
    const listeners = process.listenerCount(signal)
    let stopped = false

    const running = withStopSignals(log, async ({stop}) => {
      stop.addEventListener('abort', () => (stopped = true))
      return new Promise<never>(() => {})
    })
    // eslint-disable-next-line no-await-in-loop
    await send(signal, lines)
    t.ok(stopped, 'the first signal asks the work to stop')
    const interrupted = t.rejects(running, {code: 'INTERRUPTED', exitCode: 130, message: /^Stopped at once by a second signal/}, signal)
    // eslint-disable-next-line no-await-in-loop
    await send(signal, lines)
    // eslint-disable-next-line no-await-in-loop
    await interrupted
    t.match(lines.join(''), `received ${signal} again: stopping now`)
    t.equal(process.listenerCount(signal), listeners, 'the handlers are removed')
  }
})

t.test('a work that owns the second signal (serve) ends by itself, after its own quick cleanup', async (t) => {
  const {lines, log} = logger()
  const running = withStopSignals(
    log,
    async ({force}) =>
      new Promise<string>((resolve) => {
        force.addEventListener('abort', () => setImmediate(() => resolve('cleaned up')))
      }),
    {ownsForce: true},
  )
  await send('SIGTERM', lines)
  await send('SIGTERM', lines)
  t.equal(await running, 'cleaned up')
})

t.test('a work that ends on the first signal ends as it does', async (t) => {
  const {lines, log} = logger()
  const running = withStopSignals(
    log,
    async ({stop}) =>
      new Promise<string>((resolve) => {
        stop.addEventListener('abort', () => resolve('finished cleanly'))
      }),
  )
  await send('SIGINT', lines)
  t.equal(await running, 'finished cleanly')
})
