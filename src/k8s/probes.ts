// The container's probes and stop sequence: /readyz for start-up and readiness, /livez for liveness, a drain on stop.
import {IMAGE_PATHS} from '../docker/dockerfile.js'
import {KUBE_SLEEP_ACTION_MINOR, type K8sOptions} from './options.js'

/** Seconds between start-up probes: a model load is timed in these steps. */
const STARTUP_PERIOD = 5

/** startupProbe, readinessProbe and livenessProbe for mlserve's /readyz and /livez. */
export function buildProbes(options: K8sOptions): Record<string, unknown> {
  // Over TLS the kubelet probes with HTTPS (it does not check the certificate).
  const scheme = options.tlsSecret ? {scheme: 'HTTPS'} : {}
  const httpGet = (path: string) => ({path: `${options.pathPrefix ?? ''}${path}`, port: 'http', ...scheme})
  return {
    // /readyz turns 200 once a scorer has loaded the model and passed its warm-up: allow --load-timeout for it.
    startupProbe: {
      httpGet: httpGet('/readyz'),
      periodSeconds: STARTUP_PERIOD,
      timeoutSeconds: 2,
      failureThreshold: Math.max(1, Math.ceil(options.loadTimeout / STARTUP_PERIOD)),
    },
    // 503 while draining or when no scorer is ready: the pod leaves the Service's endpoints.
    readinessProbe: {
      httpGet: httpGet('/readyz'),
      periodSeconds: 5,
      timeoutSeconds: 2,
      failureThreshold: 2,
    },
    // 503 only when mlserve gave up restarting its scorers: then a new container is the cure.
    livenessProbe: {
      httpGet: httpGet('/livez'),
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 3,
    },
  }
}

/**
 * The preStop pause that lets the endpoints drop the pod before mlserve stops accepting connections: the
 * sleep action from Kubernetes 1.30, else an exec of the image's own node (the image may have no `sleep`).
 */
export function buildLifecycle(options: K8sOptions): Record<string, unknown> | undefined {
  if (options.drainDelay === 0) return undefined
  if ((options.kubeMinor ?? KUBE_SLEEP_ACTION_MINOR) >= KUBE_SLEEP_ACTION_MINOR) return {preStop: {sleep: {seconds: options.drainDelay}}}
  return {preStop: {exec: {command: [IMAGE_PATHS.node, '-e', `setTimeout(() => {}, ${options.drainDelay * 1000})`]}}}
}

/** Long enough for the preStop pause, mlserve's own drain and stopping its scorers, so SIGKILL never cuts a drain. */
export function terminationGracePeriod(options: K8sOptions): number {
  return options.drainDelay + options.gracePeriod + 15
}
