// Which of a model's flavors mlserve serves it as (python_function or crate).
import {MlserveError} from '../errors.js'
import type {FlavorKind, Mlmodel} from '../model/mlmodel.js'

/** python_function wins over crate, as in mlflow's flavor backend registry. */
export function pickFlavor(mlmodel: Mlmodel): FlavorKind {
  if (mlmodel.pyfunc) return 'pyfunc'
  if (mlmodel.hasCrate) return 'crate'
  const found = Object.keys(mlmodel.flavors)
  throw new MlserveError('NO_SUITABLE_FLAVOR', 'No suitable flavor backend was found for the model.', {
    suggestions: [
      `The model's flavors are [${found.join(', ')}]; mlserve serves python_function and crate models.`,
      'Log the model with a python_function flavor (every mlflow.<flavor>.log_model adds one when it can).',
    ],
  })
}
