// Stages 1 and 2 of every command that runs a model: the model URI becomes a model directory with a servable MLmodel.
import type {EnvVars} from './config.js'
import type {Logger} from './log.js'
import {readMlmodel, type FlavorKind, type Mlmodel} from './model/mlmodel.js'
import {pickFlavor} from './scorer/flavor.js'
import {resolveModelUri, type ModelRef} from './uri/resolve.js'

export interface ResolvedModel {
  readonly ref: ModelRef
  readonly mlmodel: Mlmodel
  /** The flavor that serves it: python_function wins over crate. */
  readonly flavor: FlavorKind
}

export interface LoadModelContext {
  readonly env?: EnvVars
  readonly signal?: AbortSignal
  /** The interpreter the mlflow client fallback runs with (--python). */
  readonly python?: string
}

/** Resolves `uri` (relative to `cwd`), reads its MLmodel and picks the flavor, logging both phases. */
export async function loadModel(uri: string, cwd: string, log: Logger, context: LoadModelContext = {}): Promise<ResolvedModel> {
  const resolving = log.phase('resolve model')
  const ref = await resolveModelUri(uri, {cwd, env: context.env ?? process.env, log, signal: context.signal, python: context.python})
  resolving.done(ref.localDir)

  const reading = log.phase('read MLmodel')
  const mlmodel = await readMlmodel(ref.localDir)
  const flavor = pickFlavor(mlmodel)
  reading.done(
    flavor === 'pyfunc'
      ? `python_function flavor, loader ${mlmodel.pyfunc!.loaderModule}${mlmodel.mlflowVersion ? `, saved by mlflow ${mlmodel.mlflowVersion}` : ''}`
      : 'crate flavor',
  )
  return {ref, mlmodel, flavor}
}
