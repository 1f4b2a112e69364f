// The import graph's rules, checked by `npm run lint` (depcruise src): no circle (type-only imports count)
// and no upward arrow: commands -> serve -> {uri, model, env, scorer, proxy, ...} -> {errors, config, util}.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {name: 'no-circular', severity: 'error', comment: 'An import circle, type-only imports included.', from: {}, to: {circular: true}},
    {
      name: 'no-import-of-commands',
      severity: 'error',
      comment: 'Nothing imports an oclif command.',
      from: {pathNot: '^src/commands/'},
      to: {path: '^src/commands/'},
    },
    {
      name: 'serve-wing-is-above-the-parts',
      severity: 'error',
      comment: "The parts (uri, model, env, scorer, proxy ...) do not import serve's wing.",
      from: {path: '^src/', pathNot: '^src/(commands|serve|smoke|cli)/'},
      to: {path: '^src/serve/'},
    },
    {
      name: 'model-is-below-scorer',
      severity: 'error',
      comment: "The model's files know nothing of the scorers, the proxy, env or serve.",
      from: {path: '^src/(model|uri|util)/'},
      to: {path: '^src/(scorer|proxy|env|serve|smoke|docker|k8s)/'},
    },
    {
      name: 'base-is-the-bottom',
      severity: 'error',
      comment: 'errors, config and util import no wing.',
      from: {path: '^src/(errors|config)\\.ts$|^src/util/'},
      to: {path: '^src/', pathNot: '^src/(errors|config|paths)\\.ts$|^src/util/'},
    },
  ],
  options: {
    doNotFollow: {path: 'node_modules'},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
    exclude: {path: '^dist/'},
  },
}
