// Server packages: what a server other than mlflow's own (MLServer) needs installed in the model's env,
// and how they enter the env's cache key and its verification.

/** The normalized distribution name a requirement spec installs ("MLServer_MLflow>=1.2" → "mlserver-mlflow"). */
export function requirementName(spec: string): string {
  return (/^\s*([A-Za-z\d][\w.-]*)/.exec(spec)?.[1] ?? spec).toLowerCase().replaceAll(/[-_.]+/g, '-')
}

/**
 * The modules a built env must import for its server packages: MLServer's CLI (which imports mlserver
 * and everything `mlserver start` loads, so their bytecode is written at build time) and its mlflow runtime.
 */
export function serverModules(serverPackages: readonly string[]): string[] {
  const names = new Set(serverPackages.map((spec) => requirementName(spec)))
  return names.has('mlserver') ? ['mlserver.cli', 'mlserver_mlflow'] : []
}

/**
 * The server packages as they enter a cache key: sorted, and absent when there are none, so the keys
 * of envs without them stay what they were.
 */
export function serverKeyPart(serverPackages: readonly string[] = []): {server?: string[]} {
  return serverPackages.length > 0 ? {server: [...serverPackages].sort()} : {}
}
