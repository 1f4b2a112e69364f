// The docker build stream folded for the log: steps, cache hits, the image id, the failing step with its output.
import t from 'tap'

import {createBuildTrace, traceBuildMessage} from '../../../src/docker/build-log.js'

t.test('the build stream: steps, cache hits, the image id, and the failing step with its output', async (t) => {
  const trace = createBuildTrace()
  const lines = [
    {stream: 'Step 1/3 : FROM base\n'},
    {stream: ' ---> 1234\n'},
    {stream: 'Step 2/3 : COPY mlserve/env/ /opt/mlserve/env/\n'},
    {stream: ' ---> Using cache\n ---> abcd\n'},
    {stream: 'Step 3/3 : RUN false\n'},
    {stream: ' ---> Running in 99\n'},
    {stream: 'something went wrong\n'},
    {
      error: "The command '/bin/sh -c false' returned a non-zero code: 1",
      errorDetail: {message: "The command '/bin/sh -c false' returned a non-zero code: 1", code: 1},
    },
  ].flatMap((message) => traceBuildMessage(trace, message))
  t.equal(lines[0], 'Step 1/3 : FROM base')
  t.same(trace.cached, ['Step 2/3 : COPY mlserve/env/ /opt/mlserve/env/'])
  t.equal(trace.failedStep, 'Step 3/3 : RUN false')
  t.match(trace.output, ['---> Running in 99', 'something went wrong'])
  t.equal(trace.error, "The command '/bin/sh -c false' returned a non-zero code: 1")

  const ok = createBuildTrace()
  traceBuildMessage(ok, {aux: {ID: 'sha256:feed'}})
  traceBuildMessage(ok, {stream: 'Successfully built feedbeef1234\n'})
  t.equal(ok.imageId, 'sha256:feed', 'the aux id wins over the short one')
})
