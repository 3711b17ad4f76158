/**
 * The certificate files every chaos node serves and trusts (made by test/support/tls.ts's
 * makeTestTls: a throwaway CA and a certificate for localhost), and an HTTP client that trusts
 * that CA, for the harness's own requests (load, admin calls, readiness, the proxy's upstream).
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';

export interface TlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export function trustingAgent(tls: TlsFiles, options: Agent.Options = {}): Agent {
  return new Agent({ ...options, connect: { ca: readFileSync(tls.caFile, 'utf8') } });
}
