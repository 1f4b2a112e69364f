// generate-k8s: builds the manifests for the options and writes them to a directory or returns one stream.
import {mkdir, rename, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {MlserveError, messageOf} from '../errors.js'
import {buildInferenceService} from './kserve.js'
import {buildKubernetesManifests, type Manifest} from './kubernetes.js'
import {buildModelsConfigMap} from './models-config.js'
import {checkK8sOptions, type K8sOptions} from './options.js'
import {renderManifest, renderStream} from './render.js'

export function buildManifests(options: K8sOptions): Manifest[] {
  const checked = checkK8sOptions(options)
  const config = checked.models ? [buildModelsConfigMap(checked, checked.models)] : []
  return [...config, ...(checked.kserve ? [buildInferenceService(checked)] : buildKubernetesManifests(checked))]
}

export function generateStream(options: K8sOptions): string {
  return renderStream(buildManifests(options))
}

/** Writes one file per manifest into `dir` (each replaced whole), returning their paths. */
export async function writeManifests(options: K8sOptions, dir: string): Promise<string[]> {
  const manifests = buildManifests(options)
  try {
    await mkdir(dir, {recursive: true})
    return await Promise.all(
      manifests.map(async (manifest) => {
        const file = path.join(dir, manifest.file)
        const partial = `${file}.${process.pid}.tmp`
        await writeFile(partial, renderManifest(manifest))
        await rename(partial, file)
        return file
      }),
    )
  } catch (error) {
    throw new MlserveError('MANIFEST_WRITE_FAILED', `Cannot write the manifests to ${dir}: ${messageOf(error)}`, {
      cause: error,
      suggestions: ['Pass an -o directory you can write to, or leave -o out to print them.'],
    })
  }
}
