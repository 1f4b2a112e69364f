// The tap reporter (test/reporter.js): TAP passes through, the closing line counts what passed and failed.
import t from 'tap'

import Reporter from '../reporter.js'

async function report(tap: string): Promise<string> {
  const reporter = new Reporter()
  const chunks: string[] = []
  reporter.on('data', (chunk: Buffer) => chunks.push(chunk.toString()))
  const ended = new Promise((resolve) => reporter.on('end', resolve))
  reporter.end(tap)
  await ended
  return chunks.join('')
}

t.test('the reporter passes TAP through and appends the closing line', async (t) => {
  const out = await report('ok 1 - a\nnot ok 2 - b\n# { total: 5, pass: 3, fail: 1, skip: 1 }\n')
  t.match(out, /^ok 1 - a\nnot ok 2 - b\n/)
  t.match(out, /\n3 passed, 1 failed, 1 skipped\n$/)
  t.match(await report('# { total: 2, pass: 2 }\n'), /\n2 passed, 0 failed\n$/)
  t.match(await report('garbage\n'), /0 passed, 1 failed/, 'no summary counts as a failure')
})
