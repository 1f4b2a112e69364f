// tap reporter: passes the TAP stream through unchanged and ends it with the closing line CI reads,
// `N passed, N failed` (plus `, N skipped`), counted from tap's final `# { total: ... }` summary.
import {Transform} from 'node:stream'

export default class ClosingLineReporter extends Transform {
  constructor() {
    super()
    this.tail = ''
  }

  /**
   * @override
   * @param {Buffer} chunk
   * @param {BufferEncoding} _encoding
   * @param {import('node:stream').TransformCallback} callback
   */
  _transform(chunk, _encoding, callback) {
    const text = chunk.toString()
    this.tail = (this.tail + text).slice(-4096)
    callback(null, chunk)
  }

  /**
   * @override
   * @param {import('node:stream').TransformCallback} callback
   */
  _flush(callback) {
    const summaries = [...this.tail.matchAll(/^# \{([^}]*)\}\s*$/gm)]
    const last = summaries.at(-1)
    if (!last) {
      callback(null, '0 passed, 1 failed\n# no tap summary line was found\n')
      return
    }

    const summary = last[1] ?? ''
    /** @param {string} name */
    const count = (name) => Number(new RegExp(`\\b${name}: (\\d+)`).exec(summary)?.[1] ?? 0)
    const skipped = count('skip') + count('todo')
    callback(null, `${count('pass')} passed, ${count('fail')} failed${skipped ? `, ${skipped} skipped` : ''}\n`)
  }
}
