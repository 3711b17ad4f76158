/**
 * Several real Kite instances for federation tests: each its own database and instance ID,
 * serving HTTPS with a throwaway CA that every instance trusts (KITE_FEDERATION_CA_FILE); and the
 * traffic the tests send through them: Stripe webhooks ingested at team `acme`'s `stripe` source
 * (which each test creates), looked for in the team's stream at the other end.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { createTestDatabase, type TestDatabase } from './database.js';
import { expectStatus, startTestKite, type TestKite } from './kite.js';
import { stripeWebhook } from './signers.js';
import type { TestTls } from './tls.js';
import { STRIPE_SECRET } from './webhooks.js';

/** The team the federation tests pair and send through. */
export const TEAM = 'acme';

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

export interface Ingested {
  readonly id: string;
  readonly seq: number;
  /** Date.now() when the instance answered 200 (the event is durably stored there). */
  readonly storedAt: number;
}

/** A signed Stripe webhook ingested at the instance's `acme/stripe` source; fails unless answered 200. */
export async function ingestAt(instance: Instance, type = 'payment_intent.succeeded', id?: string): Promise<Ingested> {
  const hook = stripeWebhook(STRIPE_SECRET, { type, ...(id ? { id } : {}) });
  const answer = await instance.kite.api.as(undefined).post(`/hooks/${TEAM}/stripe`, hook.body, hook.headers);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return { id: JSON.parse(hook.body).id as string, seq: answer.body.seq as number, storedAt: Date.now() };
}

/** Whether the `stripe.*` event `id` is among the first 1000 of team `acme`'s stream at the instance, as its API shows them. */
export async function hasEvent(instance: Instance, id: string): Promise<boolean> {
  const answer = expectStatus(await instance.kite.api.get(`/v1/teams/${TEAM}/events?types=stripe.*&limit=1000`), 200);
  return (answer.body.items as Array<{ event: { id: string } }>).some((item) => item.event.id === id);
}
