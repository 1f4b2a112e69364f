// `mlserve generate-k8s`: Kubernetes (or KServe) manifests that run a `mlserve build-docker` image.
import {Flags} from '@oclif/core'

import {MlserveError} from '../errors.js'

import {BaseCommand} from '../cli/base-command.js'
import {serveFlags as serve} from '../cli/serve-flags.js'
import {KUBE_DEFAULT_VERSION, SERVICE_TYPES, nameFromModelUri, parseKubeVersion, type ServiceType} from '../k8s/options.js'

/** The serve flags passed through to the container when given, in this order (unset: serve's own defaults apply). */
export const PASS_THROUGH = [
  'workers',
  'timeout',
  'max-body-size',
  'max-concurrency',
  'max-queue',
  'max-streams',
  'timeout-grace',
  'liveness-interval',
  'batch-max-rows',
  'batch-wait',
  'preload',
  'fast-path',
  'batch',
  'warmup',
  'access-log',
  'header-timeout',
  'body-timeout',
  'reload-interval',
  'r-scorer',
  'static-prefix',
  'cors-origin',
  'metrics-public',
] as const

/** Serve's declaration without its default and variable (this machine's MLSERVE_* must not leak into manifests). */
function passedThrough<F extends {default?: unknown; env?: string}>(flag: F): F {
  return {...flag, default: undefined, env: undefined, helpGroup: 'SERVE'}
}

/** Serve's declaration with its default, without its variable. */
function withoutEnv<F extends {env?: string}>(flag: F, bounds: {min?: number} = {}): F {
  return {...flag, env: undefined, ...bounds}
}

const serveFlags = {
  workers: passedThrough(serve.workers),
  timeout: passedThrough(serve.timeout),
  'max-body-size': passedThrough(serve['max-body-size']),
  'max-concurrency': passedThrough(serve['max-concurrency']),
  'max-queue': passedThrough(serve['max-queue']),
  'max-streams': passedThrough(serve['max-streams']),
  'timeout-grace': passedThrough(serve['timeout-grace']),
  'liveness-interval': passedThrough(serve['liveness-interval']),
  'batch-max-rows': passedThrough(serve['batch-max-rows']),
  'batch-wait': passedThrough(serve['batch-wait']),
  preload: passedThrough(serve.preload),
  'fast-path': passedThrough(serve['fast-path']),
  batch: passedThrough(serve.batch),
  warmup: passedThrough(serve.warmup),
  'access-log': passedThrough(serve['access-log']),
  'header-timeout': passedThrough(serve['header-timeout']),
  'body-timeout': passedThrough(serve['body-timeout']),
  'reload-interval': passedThrough(serve['reload-interval']),
  'r-scorer': passedThrough(serve['r-scorer']),
  'static-prefix': passedThrough(serve['static-prefix']),
  'cors-origin': passedThrough(serve['cors-origin']),
  'metrics-public': passedThrough(serve['metrics-public']),
} satisfies Record<(typeof PASS_THROUGH)[number], unknown>

/** The pass-through flags the user gave, as `serve` argv, in the order of serveFlags. */
function serveArgsFrom(values: Readonly<Record<string, unknown>>): string[] {
  const args: string[] = []
  for (const name of PASS_THROUGH) {
    const value = values[name]
    if (typeof value === 'number' || typeof value === 'string') args.push(`--${name}`, String(value))
    if (typeof value === 'boolean') args.push(value ? `--${name}` : `--no-${name}`)
    if (Array.isArray(value)) for (const item of value) args.push(`--${name}`, String(item))
  }

  return args
}

export default class GenerateK8s extends BaseCommand {
  static override summary = 'Write Kubernetes manifests (Deployment, Service, HPA, PDB) or a KServe InferenceService for a model image.'

  static override description = `The manifests run the image \`mlserve build-docker\` built for the model (its entrypoint is \`mlserve serve\` on the baked model, port 8080) with JSON logs, probes on /readyz and /livez, a drain on stop that outlasts --grace-period, resources, a non-root security context and Prometheus scrape annotations for /metrics.

Without -o the documents go to stdout, separated by ---; with -o DIR, one file per manifest. The same flags always give the same bytes. --kserve writes one InferenceService (serving.kserve.io/v1beta1, RawDeployment mode) instead.`

  static override examples = [
    '<%= config.bin %> generate-k8s -m models:/iris@champion --image registry.example.com/iris:3 -o k8s/',
    '<%= config.bin %> generate-k8s -m ./model --image iris:1 --kserve | kubectl apply -f -',
  ]

  static override flags = {
    'model-uri': Flags.string({
      char: 'm',
      required: true,
      summary: 'The model the image serves (names the manifests unless --name; recorded in an annotation).',
    }),
    image: Flags.string({required: true, summary: 'The image to run, as built by `mlserve build-docker -n`.'}),
    output: Flags.string({char: 'o', summary: 'Directory to write one YAML file per manifest into (default: all to stdout).'}),
    name: Flags.string({summary: 'Name of every object (default: from the model URI, e.g. models:/iris@prod -> iris).'}),
    namespace: Flags.string({summary: "Namespace of every object (default: none, i.e. kubectl's current one)."}),
    replicas: Flags.integer({min: 1, summary: 'Replicas at first apply (default: --min-replicas).'}),
    'min-replicas': Flags.integer({
      min: 1,
      default: 2,
      summary: 'Fewest replicas the autoscaler keeps (2: a pod can restart or move without an outage).',
    }),
    'max-replicas': Flags.integer({min: 1, default: 5, summary: 'Most replicas the autoscaler may run.'}),
    autoscale: Flags.boolean({
      default: true,
      allowNo: true,
      summary: 'Write a HorizontalPodAutoscaler on CPU (--no-autoscale: fixed --replicas).',
    }),
    'target-cpu': Flags.integer({
      min: 1,
      max: 1000,
      default: 70,
      summary: 'Average CPU use, in percent of --cpu-request, the autoscaler holds.',
    }),
    'cpu-request': Flags.string({default: '1', summary: 'CPU each pod is guaranteed (and the base of --target-cpu).'}),
    'cpu-limit': Flags.string({summary: 'CPU limit (default: none, so a busy pod is not throttled while the node has CPU to spare).'}),
    'memory-request': Flags.string({default: '1Gi', summary: 'Memory each pod is guaranteed.'}),
    'memory-limit': Flags.string({
      summary: 'Memory limit (default: --memory-request, so the pod is never the first killed under memory pressure).',
    }),
    'max-unavailable': Flags.integer({
      min: 1,
      default: 1,
      summary: 'Pods a voluntary disruption (node drain) may take at once (PodDisruptionBudget).',
    }),
    'service-type': Flags.option({options: SERVICE_TYPES, default: 'ClusterIP' as ServiceType, summary: 'Type of the Service.'})(),
    'service-port': Flags.integer({min: 1, max: 65_535, default: 80, summary: "Port of the Service (it forwards to the pod's 8080)."}),
    'grace-period': withoutEnv(serve['grace-period']),
    'drain-delay': Flags.integer({
      min: 0,
      default: 5,
      summary: 'Seconds a stopping pod keeps serving while it is taken out of the endpoints (preStop sleep).',
    }),
    // At least 1 s (serve allows 0, no bound): it sizes the startupProbe, which needs a bound.
    'load-timeout': withoutEnv(serve['load-timeout'], {min: 1}),
    'kube-version': Flags.string({
      default: KUBE_DEFAULT_VERSION,
      summary: 'Kubernetes version of the cluster (kubectl version): below 1.30 the preStop pause is an exec of node, not the sleep action.',
    }),
    'run-as-user': Flags.integer({min: 1, default: 10_001, summary: 'Non-root user (and group) id the container runs as.'}),
    kserve: Flags.boolean({default: false, summary: 'Write a KServe InferenceService (RawDeployment mode) instead of the plain manifests.'}),
    'enable-mlserver': serve['enable-mlserver'],
    'auth-secret': Flags.string({
      helpGroup: 'SERVE',
      summary: `Require API keys: the Secret's "tokens" key (comma-separated keys) becomes the container's MLSERVE_AUTH_TOKENS. Rotate: update the Secret, then kubectl rollout restart.`,
    }),
    'tls-secret': Flags.string({
      helpGroup: 'SERVE',
      summary:
        'Serve HTTPS with this kubernetes.io/tls Secret (tls.crt, tls.key), mounted read-only for --tls-cert/--tls-key; the probes use HTTPS.',
    }),
    // serve's file flags name files on this machine, not in the pod: refused with the flag to use instead.
    'auth-token-file': Flags.string({hidden: true}),
    'tls-cert': Flags.string({hidden: true}),
    'tls-key': Flags.string({hidden: true}),
    'tls-client-ca': Flags.string({hidden: true}),
    models: Flags.string({
      summary:
        "A serve --models file (YAML or JSON) the pod serves besides the image's model: written into a ConfigMap, mounted at /etc/mlserve/models and passed as --models.",
      description:
        "Its model URIs must be reachable from the pod (models:/ with MLFLOW_TRACKING_URI set in the pod, s3://, ...); a local path must exist inside the image. The models run in the image's environment (--env-manager local). The pods roll when the file changes (its digest is a pod annotation).",
    }),
    ...serveFlags,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(GenerateK8s)
    refuseLocalFiles(flags)
    const {generateStream, writeManifests} = await import('../k8s/generate.js')
    const options = {
      name: flags.name ?? nameFromModelUri(flags['model-uri']),
      namespace: flags.namespace,
      image: flags.image,
      modelUri: flags['model-uri'],
      replicas: flags.replicas ?? flags['min-replicas'],
      minReplicas: flags['min-replicas'],
      maxReplicas: flags['max-replicas'],
      autoscale: flags.autoscale,
      targetCpu: flags['target-cpu'],
      cpuRequest: flags['cpu-request'],
      cpuLimit: flags['cpu-limit'],
      memoryRequest: flags['memory-request'],
      memoryLimit: flags['memory-limit'],
      maxUnavailable: flags['max-unavailable'],
      serviceType: flags['service-type'],
      servicePort: flags['service-port'],
      gracePeriod: flags['grace-period'],
      drainDelay: flags['drain-delay'],
      loadTimeout: flags['load-timeout'],
      kubeMinor: parseKubeVersion(flags['kube-version']),
      runAsUser: flags['run-as-user'],
      kserve: flags.kserve,
      enableMlserver: flags['enable-mlserver'],
      serveArgs: serveArgsFrom(flags),
      // The probes and the scrape annotation ask for the routes under the prefix.
      pathPrefix: flags['static-prefix']?.replace(/\/+$/, ''),
      authSecret: flags['auth-secret'],
      tlsSecret: flags['tls-secret'],
      models: flags.models === undefined ? undefined : await readModelsConfig(flags.models, (line) => process.stderr.write(`${line}\n`)),
    }
    if (flags.output === undefined) {
      process.stdout.write(generateStream(options))
    } else {
      for (const file of await writeManifests(options, flags.output)) process.stderr.write(`wrote ${file}\n`)
    }
  }
}

/** serve's front-door file flags have no meaning in a manifest: each is refused with what to pass instead. */
function refuseLocalFiles(flags: {'auth-token-file'?: string; 'tls-cert'?: string; 'tls-key'?: string; 'tls-client-ca'?: string}): void {
  if (flags['auth-token-file'] !== undefined) {
    throw new MlserveError('INVALID_ARGUMENT', '--auth-token-file names a file on this machine; the pods read their API keys from a Secret.', {
      suggestions: [
        'Create one (keys comma-separated) and pass its name: kubectl create secret generic iris-keys --from-literal=tokens="$(openssl rand -hex 32)", then --auth-secret iris-keys.',
      ],
    })
  }

  if (flags['tls-cert'] !== undefined || flags['tls-key'] !== undefined) {
    throw new MlserveError('INVALID_ARGUMENT', '--tls-cert and --tls-key name files on this machine; the pods read theirs from a Secret.', {
      suggestions: [
        'Create a TLS Secret and pass its name: kubectl create secret tls iris-tls --cert=server.pem --key=server.key, then --tls-secret iris-tls.',
      ],
    })
  }

  if (flags['tls-client-ca'] !== undefined) {
    throw new MlserveError(
      'INVALID_ARGUMENT',
      "--tls-client-ca is not supported by generate-k8s: the kubelet's probes have no client certificate, so mTLS pods would never be ready.",
      {
        suggestions: [
          'Require client certificates at your ingress or service mesh, or add --tls-client-ca and exec probes to the manifests in your own patch.',
        ],
      },
    )
  }
}

/** The --models file checked as serve checks it (exit 2 naming the entry), with a warning per local path. */
async function readModelsConfig(file: string, warn: (line: string) => void): Promise<{text: string}> {
  const [{readModelsFileText}, {parseModelUri}] = await Promise.all([import('../serve/model-specs.js'), import('../uri/parse.js')])
  // Read once: the ConfigMap holds exactly the text that was checked.
  const {text, entries} = await readModelsFileText(file)
  for (const entry of entries) {
    if ('pattern' in entry) continue
    if (parseModelUri(entry.uri).kind === 'local') {
      warn(`--models: ${entry.uri} is a local path: it must exist inside the image (the pod cannot read this machine's files).`)
    }
  }

  return {text}
}
