// The mlserve container and pod settings that the Deployment and the InferenceService share.
import {redactUri} from '../uri/tracking.js'
import {modelsPodParts} from './models-config.js'
import {AUTH_SECRET_KEY, CONTAINER_PORT, TLS_MOUNT, type K8sOptions} from './options.js'
import {buildLifecycle, buildProbes, terminationGracePeriod} from './probes.js'

/** Labels every generated object carries; the first one is also the selector. */
export function buildLabels(options: K8sOptions): Record<string, string> {
  return {'app.kubernetes.io/name': options.name, 'app.kubernetes.io/component': 'model-server', 'app.kubernetes.io/managed-by': 'mlserve'}
}

export function buildSelector(options: K8sOptions): Record<string, string> {
  return {'app.kubernetes.io/name': options.name}
}

/** Where Prometheus finds /metrics (the common prometheus.io annotations) and which model the pod serves (credentials hidden). */
export function buildPodAnnotations(options: K8sOptions): Record<string, string> {
  return {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': String(CONTAINER_PORT),
    'prometheus.io/path': `${options.pathPrefix ?? ''}/metrics`,
    ...(options.tlsSecret ? {'prometheus.io/scheme': 'https'} : {}),
    'mlserve.dev/model-uri': redactUri(options.modelUri),
    ...modelsPodParts(options).annotations,
  }
}

/** `mlserve serve` flags for the image's entrypoint: JSON logs, the drain, then what the user passed through. */
export function buildServeArgs(options: K8sOptions): string[] {
  const args = ['--log-format', 'json', '--grace-period', String(options.gracePeriod), '--load-timeout', String(options.loadTimeout)]
  if (options.enableMlserver) args.push('--enable-mlserver')
  if (options.tlsSecret) args.push('--tls-cert', `${TLS_MOUNT}/tls.crt`, '--tls-key', `${TLS_MOUNT}/tls.key`)
  args.push(...modelsPodParts(options).args, ...options.serveArgs)
  return args
}

function buildResources(options: K8sOptions): Record<string, unknown> {
  const limits: Record<string, string> = {}
  if (options.cpuLimit !== undefined) limits.cpu = options.cpuLimit
  limits.memory = options.memoryLimit ?? options.memoryRequest
  return {requests: {cpu: options.cpuRequest, memory: options.memoryRequest}, limits}
}

/** The container: the image's entrypoint (`mlserve serve` on the baked model) with generated args. */
export function buildContainer(options: K8sOptions, containerName: string): Record<string, unknown> {
  return {
    name: containerName,
    image: options.image,
    // Images reach a cluster through a registry or an import; `IfNotPresent` never re-pulls a pinned tag.
    imagePullPolicy: 'IfNotPresent',
    args: buildServeArgs(options),
    // The API keys reach serve as MLSERVE_AUTH_TOKENS from the Secret: never in the manifests or the args.
    ...(options.authSecret
      ? {env: [{name: 'MLSERVE_AUTH_TOKENS', valueFrom: {secretKeyRef: {name: options.authSecret, key: AUTH_SECRET_KEY}}}]}
      : {}),
    ports: [{name: 'http', containerPort: CONTAINER_PORT, protocol: 'TCP'}],
    resources: buildResources(options),
    ...buildProbes(options),
    ...(buildLifecycle(options) === undefined ? {} : {lifecycle: buildLifecycle(options)}),
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: {drop: ['ALL']},
    },
    volumeMounts: [
      {name: 'tmp', mountPath: '/tmp'},
      ...(options.tlsSecret ? [{name: 'tls', mountPath: TLS_MOUNT, readOnly: true}] : []),
      ...modelsPodParts(options).mounts,
    ],
  }
}

/** Pod-level settings: non-root, the default seccomp profile, no API token, the stop budget, a writable /tmp. */
export function buildPodSettings(options: K8sOptions): Record<string, unknown> {
  return {
    terminationGracePeriodSeconds: terminationGracePeriod(options),
    // mlserve never calls the Kubernetes API: no token in the pod to leak.
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: options.runAsUser,
      runAsGroup: options.runAsUser,
      fsGroup: options.runAsUser,
      seccompProfile: {type: 'RuntimeDefault'},
    },
    volumes: [
      {name: 'tmp', emptyDir: {}},
      // Readable by the pod's group (fsGroup) only: mlserve runs as a non-root user of that group.
      ...(options.tlsSecret ? [{name: 'tls', secret: {secretName: options.tlsSecret, defaultMode: 0o440}}] : []),
      ...modelsPodParts(options).volumes,
    ],
  }
}

export function buildMetadata(options: K8sOptions, name = options.name): Record<string, unknown> {
  return {
    name,
    ...(options.namespace === undefined ? {} : {namespace: options.namespace}),
    labels: buildLabels(options),
  }
}
