// The plain Kubernetes manifests: Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget.
import type {K8sOptions} from './options.js'
import {buildContainer, buildLabels, buildMetadata, buildPodAnnotations, buildPodSettings, buildSelector} from './pod.js'

/** One manifest: the file it is written to with -o and the object. */
export interface Manifest {
  readonly file: string
  readonly object: Readonly<Record<string, unknown>>
}

export function buildDeployment(options: K8sOptions): Manifest {
  return {
    file: 'deployment.yaml',
    object: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: buildMetadata(options),
      spec: {
        replicas: options.replicas,
        selector: {matchLabels: buildSelector(options)},
        // A new pod must be ready before an old one goes: capacity never drops during a rollout.
        strategy: {type: 'RollingUpdate', rollingUpdate: {maxSurge: 1, maxUnavailable: 0}},
        // A rollout that has not progressed after a model load and a minute more is reported as failed.
        progressDeadlineSeconds: options.loadTimeout + 60,
        template: {
          metadata: {labels: buildLabels(options), annotations: buildPodAnnotations(options)},
          spec: {
            ...buildPodSettings(options),
            containers: [buildContainer(options, 'mlserve')],
          },
        },
      },
    },
  }
}

export function buildService(options: K8sOptions): Manifest {
  return {
    file: 'service.yaml',
    object: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: buildMetadata(options),
      spec: {
        type: options.serviceType,
        selector: buildSelector(options),
        ports: [{name: 'http', port: options.servicePort, targetPort: 'http', protocol: 'TCP'}],
      },
    },
  }
}

export function buildAutoscaler(options: K8sOptions): Manifest {
  return {
    file: 'hpa.yaml',
    object: {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: buildMetadata(options),
      spec: {
        scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: options.name},
        minReplicas: options.minReplicas,
        maxReplicas: options.maxReplicas,
        metrics: [{type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: options.targetCpu}}}],
      },
    },
  }
}

export function buildDisruptionBudget(options: K8sOptions): Manifest {
  return {
    file: 'pdb.yaml',
    object: {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: buildMetadata(options),
      spec: {maxUnavailable: options.maxUnavailable, selector: {matchLabels: buildSelector(options)}},
    },
  }
}

/** Every plain-Kubernetes manifest for the options, in apply order. */
export function buildKubernetesManifests(options: K8sOptions): Manifest[] {
  const manifests = [buildDeployment(options), buildService(options)]
  if (options.autoscale) manifests.push(buildAutoscaler(options))
  manifests.push(buildDisruptionBudget(options))
  return manifests
}
