// Docker for the tests: a private dockerd (own socket, data root, exec root, bridge) and a local Python
// base image made with debootstrap, cached as a rootfs tarball and imported into each fresh daemon.
import {execFile, execFileSync, spawn, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import {buildOnce, cacheRoot} from './toolchain.js'

export interface DockerdOptions {
  /** The directory the daemon's temporary directory is made in (default: os.tmpdir()). Keep it short: the socket lives there. */
  readonly root?: string
  /**
   * `private` (default): a bridge of the daemon's own (`mlsb<hex>`, its own /24), so `docker run -p` works
   * and daemons never share docker0. `none`: no container network at all (builds only).
   */
  readonly bridge?: 'private' | 'none'
  /** Let dockerd manage iptables (default false: `-p 127.0.0.1:PORT:…` goes through docker-proxy). */
  readonly iptables?: boolean
}

export interface Dockerd {
  /** For DOCKER_HOST / `docker -H`: unix:///…/docker.sock */
  readonly host: string
  readonly socket: string
  readonly dir: string
  /** The daemon's log so far. */
  log(): string
  /** Stops the daemon (TERM, then KILL) and removes its directories and bridge. Idempotent. */
  stop(): Promise<void>
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** `docker` with the daemon at host; throws with stderr on failure. */
export function docker(host: string, args: readonly string[], options: {input?: string | Buffer; timeoutMs?: number} = {}): string {
  return execFileSync('docker', ['-H', host, ...args], {
    encoding: 'utf8',
    input: options.input,
    timeout: options.timeoutMs ?? 300_000,
    maxBuffer: 64 * 1024 * 1024,
    env: {...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false'},
    stdio: ['pipe', 'pipe', 'pipe'],
  })
}

/** A container's output: `docker logs` writes its stdout and its stderr to its own. */
export function dockerLogs(host: string, id: string): {stdout: string; stderr: string} {
  const result = spawnSync('docker', ['-H', host, 'logs', id], {encoding: 'utf8', maxBuffer: 64 * 1024 * 1024})
  if (result.status !== 0) throw new Error(`docker logs ${id} failed: ${result.stderr}`)
  return {stdout: result.stdout, stderr: result.stderr}
}

/** `docker` without blocking the event loop (for commands that run while a request is in flight). */
export async function dockerAsync(host: string, args: readonly string[], timeoutMs = 300_000): Promise<string> {
  const {stdout} = await promisify(execFile)('docker', ['-H', host, ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
    env: {...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false'},
  })
  return stdout
}

function ip(args: readonly string[]): void {
  execFileSync('ip', args, {stdio: 'ignore'})
}

/** A bridge of this daemon's own with a random /24 in 10.240.0.0/12 (never docker0). */
function createBridge(): {name: string; remove(): void} {
  const name = `mlsb${randomBytes(3).toString('hex')}`
  const third = 240 + Math.floor(Math.random() * 16)
  const fourth = Math.floor(Math.random() * 256)
  ip(['link', 'add', name, 'type', 'bridge'])
  try {
    ip(['addr', 'add', `10.${third}.${fourth}.1/24`, 'dev', name])
    ip(['link', 'set', name, 'up'])
  } catch (error) {
    ip(['link', 'del', name])
    throw error
  }

  return {
    name,
    remove() {
      try {
        ip(['link', 'del', name])
      } catch {
        // already gone
      }
    },
  }
}

/** Starts a private dockerd and waits until it answers; stop() undoes everything it made. */
export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  const dir = mkdtempSync(path.join(options.root ?? tmpdir(), 'mlsd-'))
  const id = path.basename(dir).slice('mlsd-'.length)
  const socket = path.join(dir, 'docker.sock')
  const host = `unix://${socket}`
  const logFile = path.join(dir, 'dockerd.log')
  const bridge = options.bridge === 'none' ? undefined : createBridge()
  const args = [
    '--data-root',
    path.join(dir, 'data'),
    '--exec-root',
    path.join(dir, 'exec'),
    '--pidfile',
    path.join(dir, 'dockerd.pid'),
    '-H',
    host,
    `--bridge=${bridge?.name ?? 'none'}`,
    `--iptables=${options.iptables ? 'true' : 'false'}`,
    '--ip-masq=false',
    // A containerd of its own even when a system one runs, in namespaces no other daemon uses.
    '--containerd-namespace',
    `mlserve-${id}`,
    '--containerd-plugins-namespace',
    `mlserve-${id}-plugins`,
    '--userland-proxy=true',
    '--log-level=warn',
  ]
  const out = openSync(logFile, 'a')
  const child = spawn('dockerd', args, {
    stdio: ['ignore', out, out],
    detached: true,
    env: {...process.env, PATH: process.env.PATH ?? DEFAULT_PATH},
  })
  child.unref()
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')

  let stopped = false
  /** What must happen however the test process ends: every process of the daemon killed, its files and bridge gone. */
  const removeAll = () => {
    killContainers(dir)
    killLeftovers(dir)
    unmountUnder(dir)
    rmSync(dir, {recursive: true, force: true})
    bridge?.remove()
  }

  // A test process that ends without running its teardown (a crash, an unsettled promise) must not leave a daemon behind.
  const onExit = () => {
    if (stopped) return
    stopped = true
    if (child.pid !== undefined && isAlive(child.pid)) process.kill(-child.pid, 'SIGKILL')
    removeAll()
  }

  process.once('exit', onExit)
  const stop = async () => {
    if (stopped) return
    stopped = true
    process.off('exit', onExit)
    const pid = child.pid
    if (pid !== undefined && isAlive(pid)) {
      // Containers first, so that the daemon's shutdown has nothing to wait for.
      try {
        const ids = docker(host, ['ps', '-q'], {timeoutMs: 10_000}).trim().split('\n').filter(Boolean)
        if (ids.length > 0) docker(host, ['kill', ...ids], {timeoutMs: 20_000})
      } catch {
        // the daemon may already be unhealthy
      }

      process.kill(pid, 'SIGTERM')
      // eslint-disable-next-line no-await-in-loop
      for (let i = 0; i < 150 && isAlive(pid); i++) await sleep(100)
      if (isAlive(pid)) process.kill(-pid, 'SIGKILL')
    }

    removeAll()
  }

  try {
    for (let i = 0; ; i++) {
      if (exited) throw new Error(`dockerd exited at start:\n${readLog()}`)
      if (existsSync(socket)) {
        try {
          docker(host, ['version', '--format', '{{.Server.Version}}'], {timeoutMs: 10_000})
          break
        } catch {
          // not answering yet
        }
      }

      if (i > 600) throw new Error(`dockerd did not answer within 60 s:\n${readLog()}`)
      // eslint-disable-next-line no-await-in-loop
      await sleep(100)
    }
  } catch (error) {
    await stop()
    throw error
  }

  return {host, socket, dir, log: readLog, stop}
}

/** Every process whose command line names the daemon's directory: dockerd, its containerd, the shims. */
function killLeftovers(dir: string): void {
  for (const entry of listDir('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    let cmdline: string
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    } catch {
      continue
    }

    if (!cmdline.includes(`${dir}/`)) continue
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
}

/** SIGKILLs the processes of the daemon's containers, found in their cgroups (cgroupfs: <controller>/docker/<id>). */
function killContainers(dir: string): void {
  const ids = listDir(path.join(dir, 'data', 'containers'))
  if (ids.length === 0) return
  for (const controller of listDir('/sys/fs/cgroup')) {
    for (const id of ids) {
      for (const file of [
        path.join('/sys/fs/cgroup', controller, 'docker', id, 'cgroup.procs'),
        path.join('/sys/fs/cgroup', 'docker', id, 'cgroup.procs'),
      ]) {
        if (!existsSync(file)) continue
        for (const pid of readFileSync(file, 'utf8')
          .split('\n')
          .map(Number)
          .filter((n) => n > 1)) {
          try {
            process.kill(pid, 'SIGKILL')
          } catch {
            // gone
          }
        }
      }
    }
  }
}

/** Lazily unmounts whatever the daemon left mounted below dir (overlay, shm, netns), deepest first. */
function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replaceAll('\\040', ' '))
    .filter((point): point is string => point !== undefined && point.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length)
  for (const point of mounts) {
    try {
      execFileSync('umount', ['-l', point], {stdio: 'ignore'})
    } catch {
      // already unmounted
    }
  }
}

/** The Debian mirror apt uses on this machine (deb822 or one-line sources), else deb.debian.org. */
export function debianMirror(): string {
  const files = ['/etc/apt/sources.list', ...safeList('/etc/apt/sources.list.d').map((name) => path.join('/etc/apt/sources.list.d', name))]
  for (const file of files) {
    if (!existsSync(file)) continue
    const text = readFileSync(file, 'utf8')
    for (const match of text.matchAll(/^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)/gm)) {
      const uri = match[1]!
      if (/^https?:\/\//.test(uri) && !uri.includes('security')) return uri
    }
  }

  return 'http://deb.debian.org/debian'
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir).filter((name) => name.endsWith('.list') || name.endsWith('.sources'))
  } catch {
    return []
  }
}

/** Debian releases whose python3 is the given X.Y. */
const DEBIAN_PYTHON: Readonly<Record<string, string>> = {'3.11': 'bookworm'}

/** The name ensureBaseImage gives the image for Python X.Y. */
export const baseImageName = (python = '3.11') => `local/python:${python}-slim`

/**
 * The rootfs tarball of a minimal Debian with python3 (debootstrap --variant=minbase), built once under a
 * lock in <test cache>/docker/ and reused by every later run.
 */
export function ensureBaseRootfs(python = '3.11'): string {
  const suite = DEBIAN_PYTHON[python]
  if (!suite) throw new Error(`no Debian release provides Python ${python} (known: ${Object.keys(DEBIAN_PYTHON).join(', ')})`)
  const dir = path.join(cacheRoot(), 'docker', `python-${python}-${suite}-v1`)
  buildOnce(dir, (target) => {
    process.stderr.write(`# building the Python ${python} base rootfs with debootstrap (${suite}) in ${target}\n`)
    mkdirSync(target, {recursive: true})
    const rootfs = path.join(target, 'rootfs')
    const env = {...process.env, PATH: `${process.env.PATH ?? ''}:${DEFAULT_PATH}`}
    execFileSync('debootstrap', ['--variant=minbase', '--include=python3', suite, rootfs, debianMirror()], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    })
    for (const sub of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      const at = path.join(rootfs, sub)
      for (const name of listDir(at)) if (name !== 'partial' && name !== 'lock') rmSync(path.join(at, name), {recursive: true, force: true})
    }

    execFileSync('tar', ['-C', rootfs, '--numeric-owner', '-cf', path.join(target, 'rootfs.tar'), '.'], {stdio: 'inherit'})
    rmSync(rootfs, {recursive: true, force: true})
  })
  return path.join(dir, 'rootfs.tar')
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

/**
 * Makes sure the daemon at dockerHost has `local/python:<X.Y>-slim` (Debian's python3 on a minbase
 * rootfs, imported with `docker import`): no registry is needed. Returns the image name.
 */
export function ensureBaseImage(dockerHost: string, python = '3.11'): string {
  const name = baseImageName(python)
  try {
    docker(dockerHost, ['image', 'inspect', '--format', '{{.Id}}', name])
    return name
  } catch {
    // not there yet
  }

  const tarball = ensureBaseRootfs(python)
  docker(dockerHost, ['import', '--change', `ENV PATH=${DEFAULT_PATH}`, '--change', 'CMD ["python3"]', tarball, name], {timeoutMs: 600_000})
  return name
}
