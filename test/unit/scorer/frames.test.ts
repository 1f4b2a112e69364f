// The lean protocol's framing on the Node side: the codec, and FramedDispatcher against a frame server
// written here (the Python side, a real worker, is test/e2e/lean.test.ts's).
import {mkdtempSync, rmSync} from 'node:fs'
import {createServer as createHttpServer} from 'node:http'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t, {type Test} from 'tap'
import {Pool, type Dispatcher} from 'undici'

import {FRAME_PASS, FrameReader, encodeRequest, flatHeaders, responseHeaders} from '../../../src/scorer/frame-codec.js'
import {FramedDispatcher, frameSocketFor} from '../../../src/scorer/frame-dispatcher.js'

/** A response frame as mlserve_lean.py writes one. */
function responseFrame(id: number, kind: number, status: number, headers: string[], body: string): Buffer {
  const meta = Buffer.from(JSON.stringify(headers), 'latin1')
  const payload = Buffer.from(body)
  const head = Buffer.alloc(15)
  head.writeUInt32LE(11 + meta.length + payload.length, 0)
  head.writeUInt32LE(id, 4)
  head.writeUInt8(kind, 8)
  head.writeUInt16LE(status, 9)
  head.writeUInt32LE(meta.length, 11)
  return Buffer.concat([head, meta, payload])
}

/** The request frames in `bytes`: [id, [method, path, query, headers], body]; a cancel frame's meta is ['cancel']. */
function requestFrames(bytes: Buffer): Array<[number, unknown[], string]> {
  const out: Array<[number, unknown[], string]> = []
  let at = 0
  while (at + 4 <= bytes.length) {
    const length = bytes.readUInt32LE(at)
    const metaLength = bytes.readUInt32LE(at + 8)
    const meta = metaLength === 0 ? ['cancel'] : (JSON.parse(bytes.toString('latin1', at + 12, at + 12 + metaLength)) as unknown[])
    out.push([bytes.readUInt32LE(at + 4), meta, bytes.toString('utf8', at + 12 + metaLength, at + 4 + length)])
    at += 4 + length
  }

  return out
}

t.test('encodeRequest: length, id, meta (method, path, query, headers), body', async (t) => {
  const parts = encodeRequest(7, 'POST', '/invocations?x=1', ['content-type', 'text/csv'], Buffer.from('a,b\n1,2\n'))
  const [frame] = requestFrames(Buffer.concat(parts))
  t.same(frame, [7, ['POST', '/invocations', 'x=1', ['content-type', 'text/csv']], 'a,b\n1,2\n'])
  t.same(flatHeaders({'content-type': 'a', 'x-many': ['1', '2']}), ['content-type', 'a', 'x-many', '1', 'x-many', '2'])
  t.same(flatHeaders(null), [])
})

t.test('FrameReader: frames split anywhere, several in one chunk, malformed ones refused', async (t) => {
  const one = responseFrame(1, 0, 200, ['content-length', '2', 'content-type', 'application/json'], '{}')
  const two = responseFrame(2, FRAME_PASS, 0, [], '')
  const bytes = Buffer.concat([one, two])
  for (let cut = 1; cut < bytes.length; cut++) {
    const reader = new FrameReader()
    const frames = [...reader.push(bytes.subarray(0, cut)), ...reader.push(bytes.subarray(cut))]
    t.same(
      frames.map((frame) => [frame.id, frame.kind, frame.status, frame.headers, frame.body.toString()]),
      [
        [1, 0, 200, ['content-length', '2', 'content-type', 'application/json'], '{}'],
        [2, FRAME_PASS, 0, [], ''],
      ],
      `cut at ${cut}`,
    )
  }

  const bad = Buffer.alloc(8)
  bad.writeUInt32LE(3, 0)
  t.throws(() => new FrameReader().push(bad), /malformed frame/)
})

t.test("responseHeaders: uvicorn's date and server first, repeated headers kept", async (t) => {
  const headers = responseHeaders(['content-length', '2', 'Set-Cookie', 'a', 'set-cookie', 'b'], 'Fri, 04 Dec 2026 07:00:00 GMT')
  t.same(Object.keys(headers), ['date', 'server', 'content-length', 'set-cookie'])
  t.same(headers, {date: 'Fri, 04 Dec 2026 07:00:00 GMT', server: 'uvicorn', 'content-length': '2', 'set-cookie': ['a', 'b']})
  t.equal(frameSocketFor('/tmp/mlserve-x/1/s0-1.sock'), '/tmp/mlserve-x/1/s0-1.lean')
})

/** A frame server on a fresh socket: `answer` sees each request frame and the connection it came on. */
async function frameServer(t: Test, answer: (frame: [number, unknown[], string], socket: Socket) => void) {
  const dir = mkdtempSync(path.join(tmpdir(), 'frames-'))
  const socketPath = path.join(dir, 's0-1.lean')
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    let buffered = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32LE(0)) {
        const length = buffered.readUInt32LE(0)
        const [frame] = requestFrames(buffered.subarray(0, 4 + length))
        buffered = buffered.subarray(4 + length)
        answer(frame!, socket)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  return {socketPath, sockets, dir}
}

/** An HTTP side on a socket of its own, answering 299 and the request line (a real scorer's uvicorn). */
async function httpSide(t: Test, dir: string, name = 's0-1.sock'): Promise<Dispatcher> {
  const socketPath = path.join(dir, name)
  const server = createHttpServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(299).end(`http ${req.method} ${req.url}`))
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  t.teardown(() => server.close())
  return new Pool('http://localhost', {socketPath})
}

const invocation = {path: '/invocations', method: 'POST' as const, headers: {'content-type': 'application/json'}, body: '{"inputs": [1]}'}

t.test('FramedDispatcher: /invocations as frames, other routes and passed requests over HTTP', async (t) => {
  const seen: unknown[] = []
  const {socketPath, sockets, dir} = await frameServer(t, ([id, meta, body], socket) => {
    seen.push([meta, body])
    const pass = body.includes('"stream"')
    socket.write(
      responseFrame(id, pass ? FRAME_PASS : 0, 200, ['content-length', '9', 'content-type', 'application/json'], pass ? '' : `{"n": ${id}}`),
    )
  })
  const dispatcher = new FramedDispatcher(await httpSide(t, dir), socketPath)
  t.teardown(() => dispatcher.destroy())

  const first = await dispatcher.request(invocation)
  t.equal(first.statusCode, 200)
  t.equal(first.headers.server, 'uvicorn')
  t.match(first.headers.date, /GMT$/)
  t.equal(await first.body.text(), '{"n": 1}')
  const second = await dispatcher.request({...invocation, path: '/invocations?q=2'})
  t.equal(await second.body.text(), '{"n": 2}')
  t.equal(sockets.size, 1, 'one request after another: one connection, kept')
  t.same(seen[1], [['POST', '/invocations', 'q=2', ['content-type', 'application/json']], '{"inputs": [1]}'])

  const ping = await dispatcher.request({path: '/ping', method: 'GET'})
  t.equal(await ping.body.text(), 'http GET /ping', 'other routes: HTTP')
  const passed = await dispatcher.request({...invocation, body: '{"inputs": [1], "stream": true}'})
  t.equal(passed.statusCode, 299)
  t.equal(await passed.body.text(), 'http POST /invocations', 'a request the worker passes on: HTTP')

  const together = await Promise.all([1, 2, 3].map(async () => (await dispatcher.request(invocation)).body.text()))
  t.same(together, ['{"n": 4}', '{"n": 5}', '{"n": 6}'], 'three at once: each gets its own answer')
  t.equal(sockets.size, 1, 'on the one connection')
})

t.test('FramedDispatcher: answers in any order reach their own requests', async (t) => {
  const held: Array<() => void> = []
  const {socketPath, dir} = await frameServer(t, ([id, , body], socket) => {
    held.push(() => socket.write(responseFrame(id, 0, 200, ['content-type', 'text/plain'], body)))
    // The third request's answer first, then the first's, then the second's.
    if (held.length === 3) for (const index of [2, 0, 1]) held[index]!()
  })
  const dispatcher = new FramedDispatcher(await httpSide(t, dir), socketPath)
  t.teardown(() => dispatcher.destroy())
  const bodies = await Promise.all(['a', 'b', 'c'].map(async (body) => (await dispatcher.request({...invocation, body})).body.text()))
  t.same(bodies, ['a', 'b', 'c'])
})

t.test('FramedDispatcher: a cancelled request the worker never ran is forgotten; a drop nobody asked for breaks', async (t) => {
  const {socketPath, sockets, dir} = await frameServer(t, ([id, meta, body], socket) => {
    // The worker's side: a cancel of a request it has not started is answered with a kind 2 frame.
    if (meta[0] === 'cancel' || body === 'drop') socket.write(responseFrame(id, 2, 0, [], ''))
    else if (body !== 'hang') socket.write(responseFrame(id, 0, 200, [], body))
  })
  const dispatcher = new FramedDispatcher(await httpSide(t, dir), socketPath)
  t.teardown(() => dispatcher.destroy())

  const aborting = new AbortController()
  const pending = dispatcher.request({...invocation, body: 'hang', signal: aborting.signal})
  await new Promise((resolve) => setTimeout(resolve, 50))
  aborting.abort(new Error('gone'))
  await t.rejects(pending, /gone/)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(await (await dispatcher.request({...invocation, body: 'next'})).body.text(), 'next', 'the word that it was dropped breaks nothing')
  t.equal(sockets.size, 1, 'on the same connection')
  await t.rejects(
    dispatcher.request({...invocation, body: 'drop'}),
    {code: 'UND_ERR_SOCKET', message: 'the scorer dropped a request that was not cancelled'},
    'a request dropped without a cancel fails (the worker and the proxy disagree)',
  )
})

t.test('FramedDispatcher: a worker that dies mid-request, an abort, a missing frame socket', async (t) => {
  const hanging: Array<() => void> = []
  const cancels: number[] = []
  const {socketPath, sockets, dir} = await frameServer(t, ([id, meta, body], socket) => {
    if (body === 'die') socket.destroy()
    else if (meta[0] === 'cancel') cancels.push(id)
    else if (body === 'hang') hanging.push(() => socket.write(responseFrame(id, 0, 200, [], 'late')))
    else socket.write(responseFrame(id, 0, 200, [], body))
  })
  const dispatcher = new FramedDispatcher(await httpSide(t, dir), socketPath)
  t.teardown(() => dispatcher.destroy())

  await t.rejects(dispatcher.request({...invocation, body: 'die'}), {code: 'UND_ERR_SOCKET', message: 'other side closed'})
  const aborting = new AbortController()
  const pending = dispatcher.request({...invocation, body: 'hang', signal: aborting.signal})
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(sockets.size, 1)
  aborting.abort(new Error('gone'))
  await t.rejects(pending, /gone/)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(cancels, [2], 'an abandoned request is cancelled on its connection')
  hanging[0]!()
  const next = await dispatcher.request({...invocation, body: 'next'})
  t.equal(await next.body.text(), 'next', "the abandoned request's late answer reaches no other request")
  t.equal(sockets.size, 1, 'the connection stays')
  await t.rejects(dispatcher.request({...invocation, body: 'hang', headersTimeout: 50}), {code: 'UND_ERR_HEADERS_TIMEOUT'})

  const none = new FramedDispatcher(await httpSide(t, dir, 's1-1.sock'), path.join(dir, 's1-1.lean'))
  t.teardown(() => none.destroy())
  t.equal(await (await none.request(invocation)).body.text(), 'http POST /invocations', 'no frame socket: HTTP')
})
