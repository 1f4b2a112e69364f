// --env NAME=VALUE pairs, as the commands read them.
import t from 'tap'

import {parseEnvPairs} from '../../../src/cli/env-pairs.js'

t.test('env pairs: NAME=VALUE, the value may hold = or be empty; a pair without a name is refused', async (t) => {
  t.same(parseEnvPairs(['A=1', 'B=x=y', 'C=']), {A: '1', B: 'x=y', C: ''})
  t.throws(() => parseEnvPairs(['=1']), {code: 'INVALID_ARGUMENT'})
})
