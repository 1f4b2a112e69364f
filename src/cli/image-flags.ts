// The flags build-docker and generate-dockerfile share (mlflow's names where mlflow has them).
import {Flags} from '@oclif/core'

import {MlserveError} from '../errors.js'
import {modelFlags, modelOptionsFrom} from './flags.js'

export const imageFlags = {
  // Repeatable only to refuse several models with the fix (an image bakes one model; see oneModelOf).
  'model-uri': Flags.string({
    char: 'm',
    required: true,
    multiple: true,
    multipleNonGreedy: true,
    summary: modelFlags['model-uri'].summary,
    description: modelFlags['model-uri'].description,
  }),
  models: Flags.string({
    summary: 'Refused: an image bakes one model. Serve several from it with `docker run IMAGE --models FILE` or `generate-k8s --models FILE`.',
  }),
  'base-image': Flags.string({
    summary: "The image to build on (default: python:<X.Y>-slim for the model's Python X.Y, as mlflow).",
    description:
      "It must have python<X.Y> on PATH with the ABI of the environment (checked before the build), /bin/sh, and glibc and libstdc++ (any Debian- or Ubuntu-based image); it must already be in the Docker daemon (mlserve never pulls). Node and mlserve come from this machine, not from the base image's packages.",
  }),
  'enable-mlserver': Flags.boolean({
    default: false,
    summary:
      "Serve with Seldon MLServer: mlserver and mlserver-mlflow go into the image's environment, and the entrypoint gets --enable-mlserver.",
  }),
  platform: Flags.string({
    summary: "The image's platform; only this machine's (linux/amd64 or linux/arm64): the environment built here goes into the image.",
  }),
}

type ModelFlagValues = Parameters<typeof modelOptionsFrom>[0]

/** The options both commands build from their flags: the model's (as serve's), then the image's own. */
export function imageOptionsFrom(
  flags: Omit<ModelFlagValues, 'model-uri'> & {
    'model-uri': string[]
    models?: string
    'enable-mlserver': boolean
    'base-image'?: string
    platform?: string
  },
) {
  const model = {...flags, 'model-uri': oneModelOf(flags['model-uri'], flags.models)}
  return {...modelOptionsFrom(model), enableMlserver: flags['enable-mlserver'], baseImage: flags['base-image'], platform: flags.platform}
}

/** An image bakes exactly one model (one environment, the entrypoint's -m): several are refused with the ways to serve them. */
function oneModelOf(uris: readonly string[], models: string | undefined): string {
  if (uris.length === 1 && models === undefined) return uris[0]!
  const asked = models === undefined ? `${uris.length} models (-m ${uris.join(' -m ')})` : `--models ${models}`
  throw new MlserveError('INVALID_ARGUMENT', `An image bakes one model; ${asked} cannot go into one image.`, {
    suggestions: [
      'Build one image per model (mlserve build-docker -m URI -n NAME), or',
      "bake one model and serve the others from it: `docker run IMAGE --models FILE` (the file mounted) or `mlserve generate-k8s --models FILE` (a ConfigMap); their URIs must be reachable from the container (models:/ with MLFLOW_TRACKING_URI, s3://, ...) and they run in the image's environment.",
    ],
  })
}
