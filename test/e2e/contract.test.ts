// The REST contract, end to end: every request goes to the real `mlflow models serve` and to
// `mlserve serve` on the same model, and the answers must match in status, media type, Allow header and
// body bytes. Key cases also carry an absolute expectation, so that two equally broken servers still fail.
import {readFileSync} from 'node:fs'
import path from 'node:path'

import t from 'tap'

import {JSON_TYPE, PROTOCOL_NOTE, compareModel, split} from '../helpers/compare.js'
import {fixtureModel} from '../helpers/toolchain.js'

const SUM_OK = {status: 200, body: '{"predictions": [3, 7]}', contentType: JSON_TYPE}
const UNSUPPORTED = /^This predictor only supports the following content types: Types: \['text\/csv', 'application\/json'.*\]\. Got '/

t.test('routes, formats, content types and input errors (sum model)', (t) =>
  compareModel(t, fixtureModel('sum'), [
    {name: 'GET /ping', method: 'GET', path: '/ping', expect: {status: 200, body: '\n', contentType: JSON_TYPE}},
    {name: 'GET /health', method: 'GET', path: '/health', expect: {status: 200, body: '\n'}},
    // The spec (from an older FastAPI) says HEAD is implied; mlflow 3.17's FastAPI answers 405.
    {name: 'HEAD /ping', method: 'HEAD', path: '/ping'},
    {name: 'GET /version', method: 'GET', path: '/version', expect: {status: 200, body: /^\d+\.\d+\.\d+$/}},
    {
      name: 'POST /ping is 405',
      method: 'POST',
      path: '/ping',
      contentType: JSON_TYPE,
      body: '{}',
      expect: {status: 405, body: '{"detail":"Method Not Allowed"}'},
    },
    {name: 'GET /invocations is 405', method: 'GET', expect: {status: 405}},
    {name: 'unknown route is 404', method: 'GET', path: '/nope', expect: {status: 404, body: '{"detail":"Not Found"}'}},
    {name: 'GET / is 404', method: 'GET', path: '/', expect: {status: 404}},
    {
      name: 'dataframe_split',
      contentType: JSON_TYPE,
      body: split(
        ['a', 'b'],
        [
          [1, 2],
          [3, 4],
        ],
      ),
      expect: SUM_OK,
    },
    {name: 'dataframe_records', contentType: JSON_TYPE, body: '{"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}', expect: SUM_OK},
    {name: 'csv', contentType: 'text/csv', body: 'a,b\n1,2\n3,4\n', expect: SUM_OK},
    {name: 'instances as records', contentType: JSON_TYPE, body: '{"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}', expect: SUM_OK},
    {name: 'inputs as columns', contentType: JSON_TYPE, body: '{"inputs": {"a": [1, 3], "b": [2, 4]}}', expect: SUM_OK},
    {
      name: 'params',
      contentType: JSON_TYPE,
      body: JSON.stringify({
        dataframe_split: {
          columns: ['a', 'b'],
          data: [
            [1, 2],
            [3, 4],
          ],
        },
        params: {scale: 10},
      }),
      expect: {status: 200, body: '{"predictions": [30, 70]}'},
    },
    {
      name: 'charset=UTF-8 is accepted',
      contentType: 'application/json; charset=UTF-8',
      body: split(
        ['a', 'b'],
        [
          [1, 2],
          [3, 4],
        ],
      ),
      expect: SUM_OK,
    },
    {
      name: 'form-encoded is 415',
      contentType: 'application/x-www-form-urlencoded',
      body: 'a=1',
      expect: {status: 415, body: UNSUPPORTED, contentType: 'text/plain; charset=utf-8'},
    },
    {name: 'application/csv is 415', contentType: 'application/csv', body: 'a,b\n1,2', expect: {status: 415, body: UNSUPPORTED}},
    {name: 'media types are case-sensitive', contentType: 'Application/JSON', body: '{}', expect: {status: 415, body: UNSUPPORTED}},
    {
      name: 'charset latin-1 is 415',
      contentType: 'application/json; charset=latin-1',
      body: '{}',
      expect: {status: 415, body: 'The scoring server only supports UTF-8'},
    },
    {
      name: 'unknown content-type parameter is 415',
      contentType: 'application/json; format=pandas-split',
      body: '{}',
      expect: {status: 415, body: /^Unrecognized content type parameters: format\. IMPORTANT/},
    },
    {name: 'no content-type is 500', body: '{}', expect: {status: 500, body: 'Internal Server Error'}},
    {
      name: 'malformed JSON',
      contentType: JSON_TYPE,
      body: '{bad',
      expect: {
        status: 400,
        body: /^\{"error_code": "BAD_REQUEST", "message": "Invalid input\. Ensure that input is a valid JSON formatted string\. Error: 'JSONDecodeError\('Expecting property name enclosed in double quotes: line 1 column 2 \(char 1\)'\)'\\nInput: \\nb'\{bad'\\n"/,
      },
    },
    {name: 'empty JSON body', contentType: JSON_TYPE, body: '', expect: {status: 400, body: /Expecting value: line 1 column 1 \(char 0\).*b''/}},
    {name: 'a JSON list', contentType: JSON_TYPE, body: '[1, 2]', expect: {status: 400, body: /Received a list\./}},
    {name: 'a JSON scalar', contentType: JSON_TYPE, body: '5', expect: {status: 400, body: /Received unexpected input type '<class 'int'>\./}},
    {name: 'an MLflow 1.x body', contentType: JSON_TYPE, body: '{"columns": ["a"], "data": [[1]]}', expect: {status: 400, body: PROTOCOL_NOTE}},
    {
      name: 'two input fields',
      contentType: JSON_TYPE,
      body: '{"inputs": [1], "instances": [2]}',
      expect: {status: 400, body: /Received dictionary with input fields: \['inputs', 'instances'\]/},
    },
    {
      name: 'split given as a list',
      contentType: JSON_TYPE,
      body: '{"dataframe_split": [[1, 2]]}',
      expect: {status: 400, body: /Dataframe split format must be a dictionary\. Got list\./},
    },
    {
      name: 'split without data',
      contentType: JSON_TYPE,
      body: '{"dataframe_split": {"columns": ["a"]}}',
      expect: {status: 400, body: /must have 'data' field/},
    },
    {
      name: 'records given as a dict',
      contentType: JSON_TYPE,
      body: '{"dataframe_records": {"a": 1}}',
      expect: {status: 400, body: /Dataframe records format must be a list of records\. Got dictionary\./},
    },
    {
      name: 'schema enforcement error',
      contentType: JSON_TYPE,
      body: split(['y'], [[1]]),
      expect: {
        status: 400,
        body: /^\{"error_code": "INVALID_PARAMETER_VALUE", "message": "Failed to predict data '.*Model is missing inputs \['a', 'b'\]/s,
      },
    },
    {
      name: 'empty CSV',
      contentType: 'text/csv',
      body: '',
      expect: {status: 400, body: /Failed to parse input as a Pandas DataFrame.*No columns to parse from file.*stack_trace/s},
    },
    {
      name: 'a larger request (5,000 rows)',
      contentType: JSON_TYPE,
      body: split(
        ['a', 'b'],
        Array.from({length: 5000}, (_, i) => [i, i]),
      ),
      expect: {status: 200, body: /^\{"predictions": \[0, 2, 4, /},
    },
  ]),
)

t.test('a model that raises (error envelope with stack trace)', (t) =>
  compareModel(t, fixtureModel('raise'), [
    {
      name: 'model exception',
      contentType: JSON_TYPE,
      body: split(['a'], [[1]]),
      expect: {
        status: 400,
        body: /^\{"error_code": "BAD_REQUEST", "message": "Encountered an unexpected error while evaluating the model\. Verify that the serialized input Dataframe is compatible with the model for inference\.", .*"stack_trace": "Traceback \(most recent call last\):\\n.*this model always fails/s,
      },
    },
  ]),
)

t.test('bare NaN and Infinity pass through unchanged', (t) =>
  compareModel(t, fixtureModel('nan'), [
    {
      name: 'NaN output',
      contentType: JSON_TYPE,
      body: split(['a'], [[1]]),
      expect: {status: 200, body: '{"predictions": [NaN, 1.5, Infinity]}'},
    },
  ]),
)

t.test('LLM-style inputs are answered unwrapped; tensors reach the model as arrays', (t) =>
  compareModel(t, fixtureModel('echo'), [
    {
      name: 'messages',
      contentType: JSON_TYPE,
      body: '{"messages": [{"role": "user", "content": "hi"}], "temperature": 0.1}',
      expect: {status: 200, body: /^\{"type": "dict", "keys": \["messages", "temperature"\]\}$/},
    },
    {name: 'singular input', contentType: JSON_TYPE, body: '{"input": [1, 2]}', expect: {status: 200, body: /^\{"type": "dict"/}},
    {
      name: 'instances as a tensor',
      contentType: JSON_TYPE,
      body: '{"instances": [[1, 2], [3, 4]]}',
      expect: {status: 200, body: '{"predictions": {"type": "ndarray", "shape": [2, 2]}}'},
    },
    {
      name: 'split reaches the model as a DataFrame',
      contentType: JSON_TYPE,
      body: split(['x', 'y'], [[1, 2]]),
      expect: {status: 200, body: /"type": "DataFrame"/},
    },
  ]),
)

t.test('type-hinted models', (t) =>
  compareModel(t, fixtureModel('hinted'), [
    {name: 'inputs', contentType: JSON_TYPE, body: '{"inputs": ["a", "b"]}', expect: {status: 200, body: '{"predictions": ["A", "B"]}'}},
    {
      name: 'no inputs key',
      contentType: JSON_TYPE,
      body: split(['a'], [['x']]),
      expect: {status: 400, body: /"error_code": "INVALID_PARAMETER_VALUE", "message": "Request payload must be a dictionary with 'inputs' key/},
    },
  ]),
)

t.test('a real scikit-learn model with its own serving example', (t) => {
  const example = readFileSync(path.join(fixtureModel('iris'), 'serving_input_example.json'), 'utf8')
  return compareModel(t, fixtureModel('iris'), [
    {
      name: 'serving_input_example.json',
      contentType: JSON_TYPE,
      body: example,
      expect: {status: 200, body: /^\{"predictions": \[\d, \d, \d\]\}$/},
    },
    {
      name: 'csv',
      contentType: 'text/csv',
      body: 'sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n',
      expect: {status: 200},
    },
  ])
})

t.test('requests that exceed --timeout get 504', (t) =>
  compareModel(
    t,
    fixtureModel('slow'),
    [
      {name: 'fast enough', contentType: JSON_TYPE, body: split(['seconds'], [[0.1]]), expect: {status: 200, body: '{"predictions": [0.1]}'}},
      {
        name: 'too slow',
        contentType: JSON_TYPE,
        body: split(['seconds'], [[4]]),
        expect: {status: 504, body: 'Request processing time exceeded limit', contentType: JSON_TYPE},
      },
    ],
    {serveArgs: ['-t', '2']},
  ),
)
