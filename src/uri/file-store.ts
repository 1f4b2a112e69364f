// A local ./mlruns file store read natively (spec 4.6): runs, logged models, and the file model registry.
import {readFile, readdir} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadBoundedYaml} from '../util/yaml-bounded.js'
import {aliasNotFound, loggedModelNotFound, registeredModelNotFound, runNotFound, stageEmpty, versionNotFound, type ModelStore} from './store.js'

/** The directory of a file store URI (`file:///abs/mlruns`, `file:rel`, or a plain path). */
export function fileStoreRoot(uri: string, cwd: string): string {
  if (!/^file:/i.test(uri)) return path.resolve(cwd, uri)
  if (/^file:\//i.test(uri)) return fileURLToPath(new URL(uri.replace(/^file:\/(?!\/)/i, 'file:///')))
  return path.resolve(cwd, decodeURIComponent(uri.slice('file:'.length)))
}

type Meta = Readonly<Record<string, unknown>>

async function readMeta(file: string): Promise<Meta | undefined> {
  try {
    const parsed = loadBoundedYaml(await readFile(file, 'utf8'))
    return parsed && typeof parsed === 'object' ? (parsed as Meta) : undefined
  } catch {
    return undefined
  }
}

const text = (value: unknown): string | undefined => (value === undefined || value === null || value === '' ? undefined : String(value))
const listDir = (dir: string): Promise<string[]> => readdir(dir).catch(() => [] as string[])

/** Experiment directories: every entry but the registry (`models`) and hidden ones (`.trash`). */
const experiments = async (root: string): Promise<string[]> => (await listDir(root)).filter((name) => name !== 'models' && !name.startsWith('.'))

export function fileStore(trackingRoot: string, registryRoot: string): ModelStore {
  const versionMeta = (name: string, version: string) => readMeta(path.join(registryRoot, 'models', name, `version-${version}`, 'meta.yaml'))
  const modelExists = async (name: string) => (await readMeta(path.join(registryRoot, 'models', name, 'meta.yaml'))) !== undefined

  return {
    async registeredModelNames() {
      return (await listDir(path.join(registryRoot, 'models'))).filter((name) => !name.startsWith('.'))
    },
    async run(runId) {
      for (const exp of await experiments(trackingRoot)) {
        // eslint-disable-next-line no-await-in-loop
        const meta = await readMeta(path.join(trackingRoot, exp, runId, 'meta.yaml'))
        const artifactUri = text(meta?.artifact_uri)
        if (meta && artifactUri) return {artifactUri, experimentId: text(meta.experiment_id) ?? exp}
      }

      throw runNotFound(runId, `Run '${runId}' not found`)
    },

    async loggedModelOfRun(experimentId, name, runId) {
      const dir = path.join(trackingRoot, experimentId, 'models')
      for (const id of await listDir(dir)) {
        // eslint-disable-next-line no-await-in-loop
        const meta = await readMeta(path.join(dir, id, 'meta.yaml'))
        if (text(meta?.name) === name && text(meta?.source_run_id) === runId) {
          return text(meta?.artifact_location) ?? path.join(dir, id, 'artifacts')
        }
      }

      return undefined
    },

    async loggedModel(modelId) {
      for (const exp of await experiments(trackingRoot)) {
        const dir = path.join(trackingRoot, exp, 'models', modelId)
        // eslint-disable-next-line no-await-in-loop
        const meta = await readMeta(path.join(dir, 'meta.yaml'))
        if (meta) return text(meta.artifact_location) ?? path.join(dir, 'artifacts')
      }

      throw loggedModelNotFound(modelId)
    },

    async versionDownloadUri(name, version) {
      const meta = await versionMeta(name, version)
      const uri = text(meta?.storage_location) ?? text(meta?.source)
      if (uri) return uri
      throw (await modelExists(name)) ? versionNotFound(name, version) : registeredModelNotFound(name)
    },

    async versionOfAlias(name, alias) {
      if (!(await modelExists(name))) throw registeredModelNotFound(name)
      const version = (await readFile(path.join(registryRoot, 'models', name, 'aliases', alias), 'utf8').catch(() => '')).trim()
      if (version === '') throw aliasNotFound(name, alias)
      return version
    },

    async latestVersion(name, stage) {
      if (!(await modelExists(name))) throw registeredModelNotFound(name)
      let best: number | undefined
      for (const entry of await listDir(path.join(registryRoot, 'models', name))) {
        const match = /^version-(\d+)$/.exec(entry)
        if (!match) continue
        // eslint-disable-next-line no-await-in-loop
        const meta = await versionMeta(name, match[1]!)
        if (!meta) continue
        if (stage !== undefined && text(meta.current_stage)?.toLowerCase() !== stage.toLowerCase()) continue
        const version = Number(match[1])
        if (best === undefined || version > best) best = version
      }

      if (best === undefined) throw stageEmpty(name, stage)
      return String(best)
    },
  }
}
