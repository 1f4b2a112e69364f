// Bounded reads of what a model brings: a FIFO or a device is refused before it is read, whatever its name.
import path from 'node:path'

import t from 'tap'

import {readBounded} from '../../../src/util/read-bounded.js'
import {model} from '../../helpers/model-dir.js'

// Each read below must finish at once: a FIFO nobody writes to would block a reader forever.
t.setTimeout(60_000)

t.test('a FIFO or a device is refused before it is read, whatever the name', async (t) => {
  const dir = model(t, {'big.bin': 'x'.repeat(2048)}, {fifos: ['fifo'], links: {zero: '/dev/zero'}})
  await t.rejects(readBounded(path.join(dir, 'fifo'), {maxBytes: 1024, code: 'MLMODEL_INVALID'}), {
    code: 'MLMODEL_INVALID',
    message: /fifo is a FIFO \(named pipe\)/,
  })
  await t.rejects(readBounded(path.join(dir, 'zero'), {maxBytes: 1024, code: 'MLMODEL_INVALID'}), {message: /zero is a device/})
  await t.rejects(readBounded(path.join(dir, 'big.bin'), {maxBytes: 1024, code: 'MLMODEL_INVALID'}), {message: /is too large \(2048 bytes\)/})
  t.equal((await readBounded(path.join(dir, 'big.bin'), {maxBytes: 2048, code: 'MLMODEL_INVALID'})).length, 2048)
  await t.rejects(
    readBounded(path.join(dir, 'missing'), {maxBytes: 1, code: 'MLMODEL_INVALID'}),
    {code: 'ENOENT'},
    'file-system errors as they are',
  )
})
