// Whether requests reached a server's scorers as frames (the lean protocol): the connected ends of their
// frame sockets in the kernel's table of Unix sockets (Linux /proc/net/unix).
import {readFileSync} from 'node:fs'

import type {Server} from './servers.js'

/** The frame sockets of the scorers `server` started so far, from uvicorn's start lines. */
export function frameSocketsOf(server: Pick<Server, 'stderr'>): string[] {
  return [...server.stderr().matchAll(/Uvicorn running on unix socket (\S+)\.sock/g)].map((match) => `${match[1]}.lean`)
}

/** How many connected ends the frame sockets of `server` have now (the proxy's frame connections, both ends). */
export function frameConnections(server: Pick<Server, 'stderr'>): number {
  const sockets = new Set(frameSocketsOf(server))
  // Columns: Num RefCount Protocol Flags Type St Inode Path; St 03 is connected.
  return readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .filter((line) => {
      const columns = line.trim().split(/\s+/)
      return columns[5] === '03' && sockets.has(columns[7] ?? '')
    }).length
}
