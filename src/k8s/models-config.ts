// generate-k8s --models FILE: the file goes into a ConfigMap, mounted read-only in the pod and passed to
// serve as --models; the pod serves those models besides the one baked into the image.
import {createHash} from 'node:crypto'

import type {K8sOptions, ModelsConfig} from './options.js'

/** Where the ConfigMap is mounted, and the file serve reads there. */
export const MODELS_DIR = '/etc/mlserve/models'
export const MODELS_FILE = 'models.yaml'

export const modelsConfigName = (options: K8sOptions): string => `${options.name}-models`

/** The ConfigMap holding the file, under the manifests' name. */
export function buildModelsConfigMap(options: K8sOptions, config: ModelsConfig): {file: string; object: Record<string, unknown>} {
  return {
    file: 'configmap.yaml',
    object: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: modelsConfigName(options),
        ...(options.namespace === undefined ? {} : {namespace: options.namespace}),
        labels: {
          'app.kubernetes.io/name': options.name,
          'app.kubernetes.io/component': 'model-server',
          'app.kubernetes.io/managed-by': 'mlserve',
        },
      },
      data: {[MODELS_FILE]: config.text},
    },
  }
}

/** The pod's volume, the container's mount, serve's flag, and an annotation that rolls the pods when the file changes. */
export function modelsPodParts(options: K8sOptions): {
  volumes: Array<Record<string, unknown>>
  mounts: Array<Record<string, unknown>>
  args: string[]
  annotations: Record<string, string>
} {
  const config = options.models
  if (!config) return {volumes: [], mounts: [], args: [], annotations: {}}
  return {
    volumes: [{name: 'models', configMap: {name: modelsConfigName(options)}}],
    mounts: [{name: 'models', mountPath: MODELS_DIR, readOnly: true}],
    args: ['--models', `${MODELS_DIR}/${MODELS_FILE}`],
    annotations: {'mlserve.dev/models-sha256': createHash('sha256').update(config.text).digest('hex')},
  }
}
