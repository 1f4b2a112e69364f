// The flags build-docker and generate-dockerfile share (mlflow's names where mlflow has them).
import {Flags} from '@oclif/core'

import {modelOptionsFrom} from './flags.js'

export const imageFlags = {
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

/** The options both commands build from their flags: the model's (as serve's), then the image's own. */
export function imageOptionsFrom(
  flags: Parameters<typeof modelOptionsFrom>[0] & {'enable-mlserver': boolean; 'base-image'?: string; platform?: string},
) {
  return {...modelOptionsFrom(flags), enableMlserver: flags['enable-mlserver'], baseImage: flags['base-image'], platform: flags.platform}
}
