// predict's argv: mlflow's own predict entry point.
import t from 'tap'

import {predictArgs} from '../../src/predict.js'

t.test("predict runs mlflow's own predict entry point", async (t) => {
  t.same(predictArgs('/m/my model', {contentType: 'csv', inputPath: '/in.csv', outputPath: undefined}), [
    '-m',
    'mlflow.pyfunc._mlflow_pyfunc_backend_predict',
    '--model-uri',
    'file:///m/my%20model',
    '--content-type',
    'csv',
    '--input-path',
    '/in.csv',
  ])
})
