// mlserve's log: phases with their duration, and on a terminal a live line with the elapsed time.
import t from 'tap'

import {createLogger, formatDuration} from '../../src/log.js'

t.test('phases log their duration', async (t) => {
  const lines: string[] = []
  let now = 0
  const log = createLogger({write: (chunk: string) => lines.push(chunk)}, {now: () => now})
  const phase = log.phase('load model')
  now = 1534
  t.equal(phase.done('3 workers'), 1534)
  log.warn('careful')
  t.same(lines, ['[mlserve] load model...\n', '[mlserve] load model: 3 workers (1.5 s)\n', '[mlserve] warning: careful\n'])
  t.equal(formatDuration(12.4), '12 ms')
})

t.test('on a terminal, live phases show their elapsed time, then a plain done line', async (t) => {
  const chunks: string[] = []
  let now = 0
  const log = createLogger({write: (chunk: string) => chunks.push(chunk)}, {now: () => now, tty: true})
  const phase = log.phase('installing', {live: true})
  now = 2000
  await new Promise((resolve) => setTimeout(resolve, 1100))
  log.info('meanwhile')
  now = 2500
  phase.done()
  const screen = chunks.join('')
  t.match(screen, '\r\u001B[K[mlserve] installing... 2.0 s', 'the live line')
  t.match(screen, '\r\u001B[K[mlserve] meanwhile\n[mlserve] installing... 2.0 s', 'other lines go above it')
  // eslint-disable-next-line no-control-regex
  t.match(screen, /\r\u001B\[K\[mlserve\] installing \(2\.5 s\)\n$/, 'cleared, then the done line')
  const plain: string[] = []
  const quiet = createLogger({write: (chunk: string) => plain.push(chunk)}, {tty: false})
  quiet.phase('installing', {live: true}).done()
  t.notMatch(plain.join(''), '\r', 'no control characters off a terminal')
})
