// A small Docker Engine API client over DOCKER_HOST (a Unix socket by default): ping, image lookup, build.
import type {Readable} from 'node:stream'

import type {Client} from 'undici'

import type {EnvVars} from '../config.js'
import {MlserveError, messageOf} from '../errors.js'

/** Where the daemon listens: a Unix socket, or a plain-HTTP TCP address. */
export interface DockerEndpoint {
  /** The origin undici talks to (http://localhost for a socket). */
  readonly origin: string
  readonly socketPath?: string
  /** As the user would write it, for messages. */
  readonly display: string
}

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock'

/** DOCKER_HOST (unix:///path, tcp://host:port, http://host:port), else the default socket. */
export function dockerEndpoint(env: EnvVars): DockerEndpoint {
  const host = env.DOCKER_HOST?.trim() || `unix://${DEFAULT_DOCKER_SOCKET}`
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length)
    return {origin: 'http://localhost', socketPath, display: host}
  }

  const tcp = /^(?:tcp|http):\/\/([^/]+)\/?$/.exec(host)
  if (tcp) {
    if (env.DOCKER_TLS_VERIFY) {
      throw new MlserveError(
        'DOCKER_UNREACHABLE',
        `DOCKER_HOST=${host} with DOCKER_TLS_VERIFY: TLS to the daemon is not supported by mlserve.`,
        {
          suggestions: [
            "Use the daemon's Unix socket (DOCKER_HOST=unix:///var/run/docker.sock), or `mlserve generate-dockerfile` and build with your own tooling.",
          ],
        },
      )
    }

    return {origin: `http://${tcp[1]}`, display: host}
  }

  throw new MlserveError('INVALID_ARGUMENT', `DOCKER_HOST=${host} is not a unix:// or tcp:// address.`, {
    suggestions: ['Set DOCKER_HOST to unix:///path/to/docker.sock or tcp://host:port, or unset it for the default socket.'],
  })
}

/** One line of the build's JSON stream, as the daemon sends it. */
export interface BuildMessage {
  readonly stream?: string
  readonly status?: string
  readonly progress?: string
  readonly error?: string
  readonly errorDetail?: {readonly message?: string; readonly code?: number}
  readonly aux?: {readonly ID?: string}
}

export interface BuildParams {
  /** name:tag */
  readonly tag: string
  /** The container network of RUN steps: `none` (nothing in an mlserve build needs the network). */
  readonly networkMode: string
  readonly labels?: Readonly<Record<string, string>>
  readonly platform?: string
}

/** The daemon's connection; close() when done. */
export class DockerEngine {
  private constructor(
    readonly endpoint: DockerEndpoint,
    private readonly client: Client,
  ) {}

  static async connect(env: EnvVars): Promise<DockerEngine> {
    const endpoint = dockerEndpoint(env)
    const {Client} = await import('undici')
    const client = new Client(endpoint.origin, {
      ...(endpoint.socketPath ? {socketPath: endpoint.socketPath} : {}),
      headersTimeout: 0,
      bodyTimeout: 0,
      connectTimeout: 10_000,
    })
    return new DockerEngine(endpoint, client)
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => {})
  }

  private unreachable(error: unknown): MlserveError {
    const cause = (error as {code?: string}).code ?? messageOf(error)
    return new MlserveError('DOCKER_UNREACHABLE', `No Docker daemon answers at ${this.endpoint.display} (${cause}).`, {
      cause: error,
      suggestions: [
        'Start Docker (`dockerd`, or your Docker Desktop / system service), or point DOCKER_HOST at a running daemon (unix:///path/docker.sock or tcp://host:port).',
        'Without a daemon: `mlserve generate-dockerfile -m <model> -d <dir>` writes the build context for another builder (podman, buildah, kaniko).',
      ],
    })
  }

  private async request(method: string, path: string, body?: Readable, headers?: Record<string, string>, signal?: AbortSignal, json?: unknown) {
    try {
      return await this.client.request({method: method as 'GET', path, body: json === undefined ? body : JSON.stringify(json), headers, signal})
    } catch (error) {
      if (signal?.aborted) throw error
      throw this.unreachable(error)
    }
  }

  /** The daemon's version (GET /version), proving it answers. */
  async version(): Promise<{version: string; apiVersion: string; os: string; arch: string}> {
    const response = await this.request('GET', '/version')
    const text = await response.body.text()
    if (response.statusCode !== 200) throw this.unreachable(new Error(`GET /version answered ${response.statusCode}: ${text.slice(0, 200)}`))
    const info = JSON.parse(text) as {Version?: string; ApiVersion?: string; Os?: string; Arch?: string}
    return {version: info.Version ?? '?', apiVersion: info.ApiVersion ?? '?', os: info.Os ?? 'linux', arch: info.Arch ?? 'amd64'}
  }

  /** The image's id, or undefined when the daemon does not have it. */
  async imageId(name: string): Promise<string | undefined> {
    const response = await this.request('GET', `/images/${encodeURIComponent(name)}/json`)
    const text = await response.body.text()
    if (response.statusCode === 404) return undefined
    if (response.statusCode !== 200)
      throw new MlserveError('DOCKER_BUILD_FAILED', `Inspecting image ${name} failed (${response.statusCode}): ${text.slice(0, 300)}`)
    return (JSON.parse(text) as {Id?: string}).Id
  }

  /**
   * Runs `cmd` in a throw-away container of `image` with no network (a terminal, so the output is plain
   * text), and removes it: the exit code and what it printed.
   */
  async probe(image: string, cmd: readonly string[]): Promise<{exitCode: number; output: string}> {
    const created = await this.request('POST', '/containers/create', undefined, {'content-type': 'application/json'}, undefined, {
      Image: image,
      Cmd: cmd,
      Entrypoint: [],
      Tty: true,
      NetworkDisabled: true,
      HostConfig: {NetworkMode: 'none'},
    })
    const createdText = await created.body.text()
    if (created.statusCode !== 201) {
      throw new MlserveError(
        'DOCKER_BUILD_FAILED',
        `Could not start a container of ${image} (${created.statusCode}): ${createdText.slice(0, 300)}`,
      )
    }

    const {Id: id} = JSON.parse(createdText) as {Id: string}
    try {
      const started = await this.request('POST', `/containers/${id}/start`)
      const startedText = await started.body.text()
      if (started.statusCode !== 204 && started.statusCode !== 304) {
        throw new MlserveError(
          'DOCKER_BUILD_FAILED',
          `Could not start a container of ${image} (${started.statusCode}): ${startedText.slice(0, 300)}`,
        )
      }

      const waited = await this.request('POST', `/containers/${id}/wait`)
      const {StatusCode: exitCode} = JSON.parse(await waited.body.text()) as {StatusCode: number}
      const logs = await this.request('GET', `/containers/${id}/logs?stdout=1&stderr=1`)
      return {exitCode, output: (await logs.body.text()).replaceAll('\r\n', '\n').trim()}
    } finally {
      const removed = await this.request('DELETE', `/containers/${id}?force=1`)
      await removed.body.text()
    }
  }

  /**
   * POST /build with the context as a tar stream (the classic builder, which every daemon has); each
   * JSON message of the answer is handed to onMessage as it arrives. Resolves when the stream ends.
   */
  async build(context: Readable, params: BuildParams, onMessage: (message: BuildMessage) => void, signal?: AbortSignal): Promise<void> {
    const query = new URLSearchParams({
      t: params.tag,
      networkmode: params.networkMode,
      rm: '1',
      forcerm: '1',
      pull: '0',
      ...(params.labels ? {labels: JSON.stringify(params.labels)} : {}),
      ...(params.platform ? {platform: params.platform} : {}),
    })
    const response = await this.request('POST', `/build?${query}`, context, {'content-type': 'application/x-tar'}, signal)
    if (response.statusCode !== 200) {
      const text = await response.body.text()
      let message = text
      try {
        message = (JSON.parse(text) as {message?: string}).message ?? text
      } catch {
        // plain text
      }

      throw new MlserveError('DOCKER_BUILD_FAILED', `The Docker daemon refused the build (${response.statusCode}): ${message.trim()}`)
    }

    let pending = ''
    for await (const chunk of response.body) {
      pending += (chunk as Buffer).toString('utf8')
      let newline: number
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim()
        pending = pending.slice(newline + 1)
        if (line) onMessage(parseMessage(line))
      }
    }

    if (pending.trim()) onMessage(parseMessage(pending.trim()))
  }
}

function parseMessage(line: string): BuildMessage {
  try {
    return JSON.parse(line) as BuildMessage
  } catch {
    return {stream: line + '\n'}
  }
}
