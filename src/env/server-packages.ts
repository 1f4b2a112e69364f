// Server packages: what the scorer needs installed in the model's env besides the model's own
// requirements (MLServer; uvicorn's speedups), and how they enter the env's cache key and its verification.

/**
 * uvicorn's C event loop and HTTP parser. mlflow depends on plain `uvicorn`, which then parses HTTP in
 * pure Python (h11) on asyncio's loop: with these the same scorer answers each request sooner (measured
 * one request at a time: mlserve 0.87x of mlflow's throughput without them, ~0.98x with them).
 */
export const SCORER_SPEEDUPS: readonly string[] = ['uvloop>=0.19', 'httptools>=0.6']

/** The normalized distribution name a requirement spec installs ("MLServer_MLflow>=1.2" → "mlserver-mlflow"). */
export function requirementName(spec: string): string {
  return (/^\s*([A-Za-z\d][\w.-]*)/.exec(spec)?.[1] ?? spec).toLowerCase().replaceAll(/[-_.]+/g, '-')
}

/**
 * The modules a built env must import for its server packages: MLServer's CLI (which imports mlserver
 * and everything `mlserver start` loads, so their bytecode is written at build time), its mlflow
 * runtime, and uvicorn's speedups.
 */
export function serverModules(serverPackages: readonly string[]): string[] {
  const names = new Set(serverPackages.map((spec) => requirementName(spec)))
  return [
    ...(names.has('mlserver') ? ['mlserver.cli', 'mlserver_mlflow'] : []),
    ...(names.has('uvloop') ? ['uvloop'] : []),
    ...(names.has('httptools') ? ['httptools'] : []),
  ]
}

/**
 * The server packages as they enter a cache key: sorted, and absent when there are none, so the keys
 * of envs without them stay what they were.
 */
export function serverKeyPart(serverPackages: readonly string[] = []): {server?: string[]} {
  return serverPackages.length > 0 ? {server: [...serverPackages].sort()} : {}
}
