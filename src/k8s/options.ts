// What `mlserve generate-k8s` builds from: plain readonly options, checked once, shared by every manifest.
import {MlserveError} from '../errors.js'
import {redactUri} from '../uri/tracking.js'

export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const
export type ServiceType = (typeof SERVICE_TYPES)[number]

/** The port mlserve listens on inside the image (`mlserve build-docker` images: 0.0.0.0:8080). */
export const CONTAINER_PORT = 8080

/** generate-k8s --models FILE as it is passed on: the file's text (checked as serve checks it). */
export interface ModelsConfig {
  readonly text: string
}

export interface K8sOptions {
  readonly name: string
  readonly namespace?: string
  readonly image: string
  readonly modelUri: string
  /** Initial replicas (the HPA moves them between minReplicas and maxReplicas). */
  readonly replicas: number
  readonly minReplicas: number
  readonly maxReplicas: number
  /** Whether to emit a HorizontalPodAutoscaler (else the Deployment keeps `replicas`). */
  readonly autoscale: boolean
  /** Average CPU utilisation (percent of the request) the HPA holds. */
  readonly targetCpu: number
  readonly cpuRequest: string
  readonly cpuLimit?: string
  readonly memoryRequest: string
  readonly memoryLimit?: string
  /** Pods a voluntary disruption (node drain) may take down at once. */
  readonly maxUnavailable: number
  readonly serviceType: ServiceType
  readonly servicePort: number
  /** Seconds `mlserve serve` lets requests in flight finish after SIGTERM (its --grace-period). */
  readonly gracePeriod: number
  /** Seconds the pod keeps serving after it is told to stop, while endpoints drop it (preStop sleep). */
  readonly drainDelay: number
  /** The cluster's Kubernetes minor version (1.X); what the manifests may use (e.g. the preStop sleep action from 1.30). */
  readonly kubeMinor?: number
  /** Seconds a model load may take: sizes the startupProbe (serve's --load-timeout). */
  readonly loadTimeout: number
  readonly runAsUser: number
  readonly kserve: boolean
  readonly enableMlserver: boolean
  /** `mlserve serve` flags passed through to the container, in order (after the generated ones). */
  readonly serveArgs: readonly string[]
  /** serve's --static-prefix: the probes and /metrics are under it. */
  readonly pathPrefix?: string
  /** A Secret whose `tokens` key holds the API keys (comma-separated): MLSERVE_AUTH_TOKENS in the container. */
  readonly authSecret?: string
  /** A kubernetes.io/tls Secret (tls.crt, tls.key) mounted for serve's --tls-cert and --tls-key: HTTPS, HTTPS probes. */
  readonly tlsSecret?: string
  /** --models FILE: served besides the baked model, from a ConfigMap (see models-config.ts). */
  readonly models?: ModelsConfig
}

/** Where --tls-secret is mounted in the container. */
export const TLS_MOUNT = '/etc/mlserve/tls'
/** The key of --auth-secret that holds the API keys. */
export const AUTH_SECRET_KEY = 'tokens'

/** DNS-1123 subdomain: what a Secret's name must be. */
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** DNS-1035 label, at most 63 characters: what a Service name must be. */
const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/

/** KServe derives `<name>-predictor` (and longer) names from an InferenceService's name. */
export const KSERVE_NAME_MAX = 45

/** A name for the manifests from the model URI: its registered model name or its last path segment. */
export function nameFromModelUri(uri: string): string {
  const trimmed = redactUri(uri)
    .replace(/[?#].*$/, '')
    .replace(/\/+$/, '')
  const registered = /^models:\/([^/@]+)/.exec(trimmed)
  const base = registered?.[1] ?? trimmed.split(/[/:]/).pop() ?? ''
  const name = base
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, KSERVE_NAME_MAX)
    .replace(/-+$/, '')
  return name === '' ? 'model' : name
}

/** The oldest Kubernetes the manifests work on (autoscaling/v2 HorizontalPodAutoscaler). */
export const KUBE_MIN_MINOR = 23
/** The first Kubernetes with the preStop sleep action on by default (PodLifecycleSleepAction, beta). */
export const KUBE_SLEEP_ACTION_MINOR = 30
/** --kube-version's default: the version the cluster proof runs (manifests are the same for every version from 1.30). */
export const KUBE_DEFAULT_VERSION = '1.32'

/** The minor version of a Kubernetes version as `kubectl version` prints it (1.29, v1.29.4). */
export function parseKubeVersion(text: string): number {
  const match = /^v?1\.(\d+)(\.\d+)?$/.exec(text.trim())
  const minor = match ? Number(match[1]) : Number.NaN
  if (!(minor >= KUBE_MIN_MINOR)) {
    throw invalid(
      `--kube-version ${JSON.stringify(text)} is not a Kubernetes version mlserve's manifests support (1.${KUBE_MIN_MINOR} or newer, e.g. 1.29 or v1.31.2).`,
      "Pass the server version `kubectl version` prints; older clusters lack autoscaling/v2's HorizontalPodAutoscaler.",
    )
  }

  return minor
}

function invalid(message: string, suggestion: string): MlserveError {
  return new MlserveError('INVALID_ARGUMENT', message, {suggestions: [suggestion]})
}

/** Rejects option combinations Kubernetes would reject later (or silently misread), naming the flag. */
export function checkK8sOptions(options: K8sOptions): K8sOptions {
  const maxName = options.kserve ? KSERVE_NAME_MAX : 63
  if (!DNS_1035.test(options.name) || options.name.length > maxName) {
    throw invalid(
      `--name ${JSON.stringify(options.name)} is not a valid name: lower-case letters, digits and '-', starting with a letter, at most ${maxName} characters.`,
      'Pass --name, e.g. --name iris-classifier.',
    )
  }

  if (options.namespace !== undefined && (!DNS_1035.test(options.namespace) || options.namespace.length > 63)) {
    throw invalid(`--namespace ${JSON.stringify(options.namespace)} is not a valid namespace name.`, 'Use lower-case letters, digits and -.')
  }

  if (options.image.trim() === '' || /\s/.test(options.image)) {
    throw invalid(
      `--image ${JSON.stringify(options.image)} is not an image reference.`,
      'Pass the image `mlserve build-docker -n` built, e.g. --image iris:1.',
    )
  }

  if (options.minReplicas > options.maxReplicas) {
    throw invalid(
      `--min-replicas ${options.minReplicas} is above --max-replicas ${options.maxReplicas}.`,
      'Raise --max-replicas or lower --min-replicas.',
    )
  }

  if (options.autoscale && (options.replicas < options.minReplicas || options.replicas > options.maxReplicas)) {
    throw invalid(
      `--replicas ${options.replicas} is outside --min-replicas ${options.minReplicas} .. --max-replicas ${options.maxReplicas}.`,
      'The autoscaler moves the replicas between the two bounds; pass --no-autoscale for a fixed count.',
    )
  }

  if (options.kserve && options.tlsSecret) {
    throw invalid(
      '--tls-secret with --kserve: KServe sends plain HTTP to the predictor container, so an HTTPS container would refuse it.',
      "Terminate TLS at KServe's ingress gateway instead, or generate the plain manifests (without --kserve).",
    )
  }

  for (const [flag, value] of [
    ['--auth-secret', options.authSecret],
    ['--tls-secret', options.tlsSecret],
  ] as const) {
    if (value !== undefined && (!DNS_1123_SUBDOMAIN.test(value) || value.length > 253)) {
      throw invalid(`${flag} ${JSON.stringify(value)} is not a Secret name.`, 'Give the name of a Secret in the namespace, e.g. iris-keys.')
    }
  }

  for (const [flag, value] of [
    ['--cpu-request', options.cpuRequest],
    ['--cpu-limit', options.cpuLimit],
  ] as const) {
    if (value !== undefined && !/^(\d+m|\d+(\.\d+)?)$/.test(value)) {
      throw invalid(`${flag} ${JSON.stringify(value)} is not a CPU quantity.`, 'Use cores (1, 0.5) or millicores (500m).')
    }
  }

  for (const [flag, value] of [
    ['--memory-request', options.memoryRequest],
    ['--memory-limit', options.memoryLimit],
  ] as const) {
    if (value !== undefined && !/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/.test(value)) {
      throw invalid(`${flag} ${JSON.stringify(value)} is not a memory quantity.`, 'Use bytes with a suffix, e.g. 512Mi or 2Gi.')
    }
  }

  return options
}
