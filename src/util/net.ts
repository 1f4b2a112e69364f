// A free TCP port on 127.0.0.1: for scorers that cannot listen on a Unix socket (MLServer, the R
// package's server), and for tests.
import {createServer} from 'node:net'

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}
