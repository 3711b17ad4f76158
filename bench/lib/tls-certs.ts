/**
 * A throwaway certificate authority and a server certificate for localhost / 127.0.0.1, made with
 * the openssl command line (test/support/tls.ts, which needs nothing of vitest):
 * federation benchmarks run over real TLS with a private CA, as an operator would
 * (KITE_TLS_CERT_FILE/KEY_FILE on the receiver, KITE_FEDERATION_CA_FILE on the sender).
 */
import { readFileSync, rmSync } from 'node:fs';
import { makeTestTls } from '../../test/support/tls.js';
import { onCleanup } from './processes.js';

export interface BenchTls {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA certificate (PEM), for clients in the bench process. */
  readonly ca: string;
}

let made: BenchTls | undefined;

/** One CA and server certificate per bench process (removed at exit). */
export function benchTls(): BenchTls {
  if (made) return made;
  const tls = makeTestTls();
  onCleanup(() => rmSync(tls.dir, { recursive: true, force: true }));
  made = { ...tls, ca: readFileSync(tls.caFile, 'utf8') };
  return made;
}
