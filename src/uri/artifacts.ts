// Downloads an artifact URI into a directory natively: the tracking server's artifact proxy
// (mlflow-artifacts:, http(s)) and local artifact roots (file:, plain paths). Other schemes: undefined.
import {cp, mkdir, stat} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {restFailureOf, type RestClient} from './rest.js'
import {ARTIFACTS_ENDPOINT, mlflowArtifactsUrl, splitProxyUrl, uriScheme} from './parse.js'
import {safeJoin} from './safe-path.js'

/** Whether this module can download the URI without the Python client. */
export function isNativeArtifactUri(uri: string): boolean {
  const scheme = uriScheme(uri)
  if (scheme === undefined || scheme === 'file' || scheme === 'mlflow-artifacts') return true
  return (scheme === 'http' || scheme === 'https') && splitProxyUrl(uri) !== undefined
}

/**
 * Downloads the artifact (a directory's files, or one file) at `uri` into `dest`, overwriting.
 * Resolves false when nothing exists there.
 */
export async function downloadArtifacts(uri: string, dest: string, client: RestClient, trackingUri: string): Promise<boolean> {
  const scheme = uriScheme(uri)
  if (scheme === undefined || scheme === 'file') return copyLocal(localArtifactPath(uri), dest)
  const url = scheme === 'mlflow-artifacts' ? mlflowArtifactsUrl(uri, trackingUri) : uri
  const proxy = splitProxyUrl(url)
  if (!proxy) throw new Error(`not a native artifact URI: ${uri}`)
  return downloadFromProxy(client, proxy.base, proxy.root, dest)
}

function localArtifactPath(uri: string): string {
  if (!/^file:/i.test(uri)) return path.resolve(uri)
  return fileURLToPath(new URL(uri.replace(/^file:\/(?!\/)/i, 'file:///')))
}

async function copyLocal(source: string, dest: string): Promise<boolean> {
  const info = await stat(source).catch(() => undefined)
  if (!info) return false
  await mkdir(dest, {recursive: true})
  // Links are copied as they are written (Node would rewrite a relative one to the store's absolute path):
  // a link inside the model stays inside its copy.
  if (info.isDirectory()) await cp(source, dest, {recursive: true, force: true, verbatimSymlinks: true})
  else await cp(source, path.join(dest, path.basename(source)), {force: true})
  return true
}

interface ListedFile {
  readonly path?: string
  readonly is_dir?: boolean
}

const encodePath = (p: string): string => p.split('/').map(encodeURIComponent).join('/')

async function downloadFromProxy(client: RestClient, base: string, root: string, dest: string): Promise<boolean> {
  const list = async (rel: string): Promise<ListedFile[]> => {
    const answer = await client.get<{files?: ListedFile[]}>(base, 'mlflow-artifacts/artifacts', {
      path: [root, rel].filter(Boolean).join('/'),
    })
    return answer.files ?? []
  }

  const fileUrl = (rel: string) => `${base}${ARTIFACTS_ENDPOINT}/${encodePath([root, rel].filter(Boolean).join('/'))}`

  const walk = async (rel: string): Promise<number> => {
    let count = 0
    for (const entry of await list(rel)) {
      // The server lists names relative to the listed directory; each must stay under dest.
      const name = entry.path ?? ''
      const childRel = rel ? `${rel}/${name}` : name
      const target = safeJoin(dest, childRel)
      // One download at a time, as mlflow's client does by default: the tracking server is not ours to flood.
      /* eslint-disable no-await-in-loop */
      if (entry.is_dir) {
        await mkdir(target, {recursive: true})
        count += await walk(childRel)
      } else {
        await mkdir(path.dirname(target), {recursive: true})
        await client.download(fileUrl(childRel), target)
        count++
      }
      /* eslint-enable no-await-in-loop */
    }

    return count
  }

  await mkdir(dest, {recursive: true})
  if ((await walk('')) > 0) return true
  // An empty listing: the root is a single file, or nothing.
  if (root === '') return false
  try {
    await client.download(fileUrl(''), safeJoin(dest, path.posix.basename(root)))
    return true
  } catch (error) {
    if (restFailureOf(error)?.status === 404) return false
    throw error
  }
}
