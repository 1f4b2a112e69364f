// Memory accounting: --max-memory sizes, PSS read from smaps_rollup, and a real process tree's PSS.
import {spawn} from 'node:child_process'

import t from 'tap'

import {parseSize, processTree, pssOf, treePss} from '../../../src/serve/memory.js'

t.test('sizes as written: decimal and binary units, case-insensitive', async (t) => {
  t.equal(parseSize('16GiB'), 16 * 2 ** 30)
  t.equal(parseSize('512M'), 512e6)
  t.equal(parseSize('1.5gi'), 1.5 * 2 ** 30)
  t.equal(parseSize('1000'), 1000)
  t.equal(parseSize('2 KiB'), 2048)
})

t.test('not a size: a usage error naming the flag and the form', async (t) => {
  for (const bad of ['', 'lots', '-1G', '0', '16XB', 'G'])
    t.throws(() => parseSize(bad), {code: 'INVALID_ARGUMENT', exitCode: 2, message: /^--max-memory .*: not a size\./}, bad)
})

t.test('the Pss line of smaps_rollup, in bytes', async (t) => {
  const text = '55a0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:               24000 kB\nPss:               12345 kB\nPss_Anon:  100 kB\n'
  t.equal(pssOf(text), 12345 * 1024)
  t.equal(pssOf('Rss: 1 kB\n'), undefined)
})

t.test(
  'a process tree: the root and its descendants, each counted once; gone processes count 0',
  {skip: process.platform !== 'linux'},
  async (t) => {
    const child = spawn('sh', ['-c', 'sleep 30 & sleep 30 & wait'], {stdio: 'ignore'})
    t.teardown(() => {
      child.kill('SIGKILL')
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const tree = await processTree([child.pid!, child.pid!])
    t.equal(tree[0], child.pid)
    t.equal(tree.length, 3, 'the shell and its two sleeps')
    const pss = await treePss([child.pid!])
    t.ok(pss > 0, 'some memory')
    t.same(await processTree([]), [])
    for (const pid of tree) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  },
)
