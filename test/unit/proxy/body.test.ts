// Request bodies: held in memory under the shared budget, spilled to a file past it, refused past --max-body-size.
import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import type {IncomingMessage} from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {text} from 'node:stream/consumers'

import t from 'tap'

import {MemoryBudget, readBody} from '../../../src/proxy/body.js'

/** A request whose body arrives in `chunks`, with the headers a client would send. */
function request(chunks: string[], headers: Record<string, string> = {}): IncomingMessage {
  const stream = Readable.from(chunks.map((chunk) => Buffer.from(chunk)))
  return Object.assign(stream, {headers}) as unknown as IncomingMessage
}

const spillDir = mkdtempSync(path.join(tmpdir(), 'mlserve-body-test-'))
t.teardown(() => rmSync(spillDir, {recursive: true, force: true}))

t.test('no body: no content-length and no transfer-encoding, or a length of 0', async (t) => {
  t.equal((await readBody(request([]))).size, 0)
  t.equal((await readBody(request([], {'content-length': '0'}))).open(), null)
})

t.test('a small body is held in memory and counted in the budget until discarded', async (t) => {
  const budget = new MemoryBudget(1000)
  const body = await readBody(request(['{"a":', ' 1}'], {'transfer-encoding': 'chunked'}), {budget, spillDir})
  t.equal(body.size, 8)
  t.equal(body.memory?.toString(), '{"a": 1}')
  t.equal(budget.held, 8)
  body.discard()
  t.equal(budget.held, 0)
})

t.test('a body over the memory limit goes to a file, which each open() reads again and discard() deletes', async (t) => {
  const body = await readBody(request(['x'.repeat(10), 'y'.repeat(10)], {'content-length': '20'}), {memoryLimit: 8, spillDir})
  t.equal(body.size, 20)
  t.equal(body.memory, undefined)
  t.equal(await text(body.open() as Readable), 'x'.repeat(10) + 'y'.repeat(10))
  t.equal(await text(body.open() as Readable), 'x'.repeat(10) + 'y'.repeat(10), 'a fresh stream for a retry')
  t.equal(readdirSync(spillDir).length, 1)
  body.discard()
  // discard() deletes in the background: wait until it has (the test's own timeout bounds this).
  while (readdirSync(spillDir).length > 0) await new Promise((resolve) => setImmediate(resolve)) // eslint-disable-line no-await-in-loop
  t.same(readdirSync(spillDir), [])
})

t.test('past --max-body-size: BodyTooLarge, from the declared length or while reading', async (t) => {
  await t.rejects(readBody(request(['x'], {'content-length': '100'}), {maxBytes: 10}), {message: 'The request body is larger than 10 bytes.'})
  await t.rejects(readBody(request(['x'.repeat(6), 'x'.repeat(6)], {'transfer-encoding': 'chunked'}), {maxBytes: 10, spillDir}), {
    message: 'The request body is larger than 10 bytes.',
  })
  t.same(readdirSync(spillDir), [], 'nothing kept')
})
