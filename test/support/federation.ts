/**
 * Several real Kite instances for federation tests: each its own database and instance ID,
 * serving HTTPS with a throwaway CA that every instance trusts (KITE_FEDERATION_CA_FILE).
 */
import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from './database.js';
import { expectStatus, startTestKite, type TestKite } from './kite.js';
import type { TestTls } from './tls.js';

export interface Instance {
  readonly id: string;
  readonly db: TestDatabase;
  readonly kite: TestKite;
  /** https://localhost:<port>: the URL peers use (the certificate names localhost). */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startInstance(id: string, tls: TestTls, env: Record<string, string> = {}): Promise<Instance> {
  const db = await createTestDatabase();
  const kite = await startTestKite(db.url, {
    KITE_INSTANCE_ID: id,
    KITE_PUBLIC_URL: `https://${id}.kite.test`,
    KITE_TLS_CERT_FILE: tls.certFile,
    KITE_TLS_KEY_FILE: tls.keyFile,
    KITE_FEDERATION_CA_FILE: tls.caFile,
    ...env,
  });
  // The harness's API client uses Node's fetch, which must trust the test CA too.
  return {
    id, db, kite, url: `https://localhost:${kite.port}`,
    async stop() {
      await kite.close();
      await db.drop();
    },
  };
}

export function peerKey(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** Registers a on b's team and b on a's, with matching key pairs (contract §5). */
export async function pair(a: Instance, b: Instance, team: string, settings: Record<string, unknown> = {}, back: Record<string, unknown> = {}): Promise<{ aPeerId: string; bPeerId: string }> {
  const aToB = peerKey();
  const bToA = peerKey();
  const onA = expectStatus(await a.kite.api.post(`/v1/teams/${team}/peers`, { instanceId: b.id, url: b.url, scopes: ['*'], outboundKey: aToB, inboundKey: bToA, ...settings }), 201);
  const onB = expectStatus(await b.kite.api.post(`/v1/teams/${team}/peers`, { instanceId: a.id, url: a.url, scopes: ['*'], outboundKey: bToA, inboundKey: aToB, ...back }), 201);
  return { aPeerId: onA.body.id, bPeerId: onB.body.id };
}
