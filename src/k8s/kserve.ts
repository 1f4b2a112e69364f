// The KServe InferenceService: a custom predictor container running the mlserve image, in RawDeployment mode.
import type {Manifest} from './kubernetes.js'
import type {K8sOptions} from './options.js'
import {buildContainer, buildMetadata, buildPodAnnotations, buildPodSettings} from './pod.js'

/** KServe finds the model server container of a custom predictor by this name. */
export const KSERVE_CONTAINER = 'kserve-container'

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
          // mlflow's /invocations is KServe's custom-container v1 traffic; MLServer speaks the V2 protocol.
          protocolVersion: options.enableMlserver ? 'v2' : 'v1',
          ...buildPodSettings(options),
          containers: [buildContainer(options, KSERVE_CONTAINER)],
        },
      },
    },
  }
}
