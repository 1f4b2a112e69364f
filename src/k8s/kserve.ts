// The KServe InferenceService: a custom predictor container running the mlserve image, in RawDeployment mode.
import type {Manifest} from './kubernetes.js'
import type {K8sOptions} from './options.js'
import {buildContainer, buildMetadata, buildPodAnnotations, buildPodSettings} from './pod.js'

/** KServe finds the model server container of a custom predictor by this name. */
export const KSERVE_CONTAINER = 'kserve-container'

/**
 * The custom predictor: KServe reads a custom container's protocol from its PROTOCOL variable (v1 unless
 * set: mlflow's /invocations; v2 for MLServer's /v2 routes) and routes its Service port 80 to the
 * container's first port.
 */
function buildPredictorContainer(options: K8sOptions): Record<string, unknown> {
  const {name, image, imagePullPolicy, args, env, ...rest} = buildContainer(options, KSERVE_CONTAINER)
  const own = (env as unknown[] | undefined) ?? []
  return {name, image, imagePullPolicy, args, env: [{name: 'PROTOCOL', value: options.enableMlserver ? 'v2' : 'v1'}, ...own], ...rest}
}

export function buildInferenceService(options: K8sOptions): Manifest {
  const metadata = buildMetadata(options)
  return {
    file: 'inferenceservice.yaml',
    object: {
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata: {
        ...metadata,
        annotations: {
          // A Deployment, Service and HPA of its own: no Knative, no activator in the request path.
          'serving.kserve.io/deploymentMode': 'RawDeployment',
          'serving.kserve.io/autoscalerClass': 'hpa',
          ...buildPodAnnotations(options),
        },
      },
      spec: {
        predictor: {
          minReplicas: options.autoscale ? options.minReplicas : options.replicas,
          maxReplicas: options.autoscale ? options.maxReplicas : options.replicas,
          scaleMetric: 'cpu',
          scaleTarget: options.targetCpu,
          ...buildPodSettings(options),
          containers: [buildPredictorContainer(options)],
        },
      },
    },
  }
}
