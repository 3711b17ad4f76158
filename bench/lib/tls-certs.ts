/**
 * A throwaway certificate authority and a server certificate for localhost / 127.0.0.1, made with
 * the openssl command line (the recipe of test/support/tls.ts, which bench code cannot import):
 * federation benchmarks run over real TLS with a private CA, as an operator would
 * (KITE_TLS_CERT_FILE/KEY_FILE on the receiver, KITE_FEDERATION_CA_FILE on the sender).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
  const dir = mkdtempSync(path.join(tmpdir(), 'kite-bench-tls-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=Kite bench CA', '-keyout', file('ca.key'), '-out', file('ca.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
    '-keyout', file('server.key'), '-out', file('server.csr'));
  writeFileSync(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-days', '2', '-out', file('server.pem'), '-extfile', file('server.ext'));
  made = { dir, caFile: file('ca.pem'), certFile: file('server.pem'), keyFile: file('server.key'), ca: readFileSync(file('ca.pem'), 'utf8') };
  return made;
}
