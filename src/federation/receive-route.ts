/**
 * `POST /hooks/{team}/kite` (contract §5 "Receiving"): events forwarded by a peer instance.
 *
 * In order: the sender must be a live peer of the team named by `kite-peer`, and the Standard
 * Webhooks signature must verify with one of its inbound keys (401 `invalid_signature` otherwise,
 * the same answer for an unknown team, an unknown peer or a wrong key, so a caller learns nothing;
 * the sender is remembered for a second, sender-cache.ts, and read again when it fails to verify);
 * then its inbound rate limit (429 with Retry-After); then the body (400/413 as for ingest). Events
 * keep their `kitefed*` provenance. An event whose chain already holds this instance's ID has been
 * here before: it is answered as accepted (`seq` null) and not stored, which ends cycles. The rest
 * go through group commit like any webhook (dedup by (team, source, id), then the forwarding rule
 * inside the append's transaction), and the answer waits for the commit.
 */
import type { AppContext } from '../app-context.js';
import { coerceError, KiteError } from '../errors.js';
import { json, type KiteRequest, type KiteResponse, type Route } from '../http/types.js';
import { withDeadline } from '../ingest/ingest-route.js';
import { hopLimitDrops } from './hop-limit-drops.js';
import { parseCloudEvents } from '../providers/cloudevents.js';
import { verifyStandardSignature } from '../providers/standard-signature.js';
import type { NormalizedEvent } from '../providers/types.js';
import { TEAM_SLUG } from '../teams/team-directory.js';
import { PostgresInboundBuckets } from './inbound-buckets.js';
import { InboundRateLimiter } from './inbound-rate-limit.js';
import { federationSource } from './internal-events.js';
import { generatePeerKey, inboundKeys } from './peer-keys.js';
import type { PeerRecord } from './peer-record.js';
import type { PeerStore } from './peer-store.js';

export const PEER_HEADER = 'kite-peer';

// Verified against when the sender is unknown, so a wrong peer costs the same HMAC as a wrong key.
const NO_SUCH_PEER_KEY = generatePeerKey();

const INSTANCE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function receiveRoutes(ctx: AppContext, peers: PeerStore, limiter = new InboundRateLimiter(new PostgresInboundBuckets(ctx.pool))): Route[] {
  peers.onPeerChanged((change) => {
    if (change.kind === 'deleted') limiter.forget(change.peerId);
  });
  return [{ method: 'post', pattern: '/hooks/:team/kite', handler: (request) => receiveFromPeer(ctx, peers, limiter, request) }];
}

async function receiveFromPeer(ctx: AppContext, peers: PeerStore, limiter: InboundRateLimiter, request: KiteRequest): Promise<KiteResponse> {
  const team = request.params['team'] ?? '';
  const started = performance.now();
  let outcome = 'stored';
  // Only a verified sender's team becomes a metric label, so made-up URLs cannot grow the metric.
  let verified = false;
  try {
    const answer = await withDeadline(receive(ctx, peers, limiter, request, team, () => (verified = true)));
    outcome = answer.outcome;
    return answer.response;
  } catch (err) {
    const error = coerceError(err);
    outcome = error.code;
    throw error;
  } finally {
    const labels = { team: verified ? team : '-', source: verified ? 'kite' : '-', outcome };
    ctx.metrics.ingestTotal.inc(labels);
    ctx.metrics.ingestSeconds.observe(labels, (performance.now() - started) / 1000);
  }
}

async function receive(
  ctx: AppContext, peers: PeerStore, limiter: InboundRateLimiter, request: KiteRequest, team: string, onVerified: () => void,
): Promise<{ response: KiteResponse; outcome: string }> {
  const { teamId, peer } = await verifiedPeer(ctx, peers, request, team);
  onVerified();
  limiter.admit(peer.id, peer.inboundRateLimit);
  let events: NormalizedEvent[];
  let visited: boolean[];
  try {
    events = parseCloudEvents(request, { stripKiteExtensions: false }).events;
    visited = events.map((event) => checkProvenance(event, ctx.config.instanceId));
    events = events.map(withIntegerHops);
  } catch (err) {
    // A refused body still costs a token, so a peer cannot flood us with garbage for free.
    void limiter.take(peer.id, peer.inboundRateLimit, 1);
    throw err;
  }
  void limiter.take(peer.id, peer.inboundRateLimit, events.length);
  // A probe from a peer we hold dead-lettered says it takes our requests again (it just accepted
  // an invite, or fixed its keys): probe it back now instead of in up to maxDelayMs.
  if (events.length === 0 && peer.state === 'dead-lettered') {
    peers.requestProbe(peer.id).catch((err: unknown) => ctx.logger.warn({ err: (err as Error).message, peer: peer.id }, 'could not ask for a probe'));
  }
  const kept = events.filter((_, i) => !visited[i]);
  const results = await ctx.appender.appendMany(kept.map((event) => ({ teamId, event })));
  countDrops(ctx, teamId, peer, events.length - kept.length, kept.flatMap((event, i) => (results[i]!.duplicate ? [] : [{ seq: results[i]!.seq, source: event.source, id: event.id }])));
  let next = 0;
  const items = events.map((event, i) => {
    if (visited[i]) return { id: event.id, seq: null, duplicate: false };
    const result = results[next++]!;
    return { id: event.id, seq: result.seq, duplicate: result.duplicate };
  });
  ctx.logger.debug({ team, peer: peer.id, instanceId: peer.instanceId, events: events.length, stored: kept.length }, 'federated events received');
  const outcome = results.length > 0 && results.every((r) => r.duplicate) ? 'duplicate' : events.length === 0 ? 'probe' : 'stored';
  return { response: json(200, { items }), outcome };
}

/**
 * kite_federation_dropped_total: chain drops are known here; hop-limit drops are decided inside
 * the append function, so they are read back after the answer (see hopLimitDrops for why that
 * is exact and only needed here).
 */
function countDrops(ctx: AppContext, teamId: number, sender: PeerRecord, chainDrops: number, fresh: { seq: number; source: string; id: string }[]): void {
  const dropped = ctx.metrics.federationDroppedTotal;
  if (chainDrops > 0) dropped.inc({ reason: 'chain', peer: sender.id, peer_instance: sender.instanceId }, chainDrops);
  if (fresh.length === 0) return;
  hopLimitDrops(ctx.pool, teamId, federationSource(ctx.config.publicUrl), fresh).then(
    (drops) => drops.forEach((d) => dropped.inc({ reason: 'hop_limit', peer: d.peerId, peer_instance: d.instanceId }, d.count)),
    (err: unknown) => ctx.logger.debug({ err: (err as Error).message }, 'could not count hop-limit drops'),
  );
}

async function verifiedPeer(ctx: AppContext, peers: PeerStore, request: KiteRequest, team: string): Promise<{ teamId: number; peer: PeerRecord }> {
  const instanceId = request.headers[PEER_HEADER] ?? '';
  const teamId = TEAM_SLUG.test(team) ? await ctx.teams.find(team) : undefined;
  const known = teamId !== undefined && INSTANCE_ID.test(instanceId);
  // A probe (an empty batch) reads the peer fresh: its state decides whether we probe back.
  const probe = request.body.length <= 4 && request.body.toString().trim() === '[]';
  let found = known ? await peers.findSender(teamId, instanceId, probe) : { peer: undefined, cached: false };
  const verify = (peer: PeerRecord | undefined) =>
    verifyStandardSignature(request.headers, request.body, peer ? inboundKeys(peer, request.receivedAt) : [NO_SUCH_PEER_KEY], request.receivedAt.getTime() / 1000);
  try {
    verify(found.peer);
  } catch (err) {
    // The remembered peer may predate a key rotation made on another node: ask the database.
    if (!found.cached || !known) throw err;
    found = await peers.findSender(teamId, instanceId, true);
    verify(found.peer);
  }
  if (!found.peer || teamId === undefined) throw new KiteError('invalid_signature');
  return { teamId, peer: found.peer };
}

/**
 * Checks the provenance attributes, which must be what Kite sends (contract §5) since the
 * forwarding rule relies on them to stop cycles: `kitefedorigin` an instance ID, `kitefedchain` a
 * string holding a JSON array of instance IDs, `kitefedhops` a whole number ≥ 0. Returns true when
 * this instance is already in the chain: the event has been stored here before.
 */
function checkProvenance(event: NormalizedEvent, selfInstanceId: string): boolean {
  // Kept by the parser (no second parse of the event); absent means the event carries none.
  const attributes = event.provenance;
  if (!attributes) return false;
  const refuse = (message: string) => new KiteError('invalid_body', `Event ${JSON.stringify(event.id)}: ${message}`);
  const origin = attributes['kitefedorigin'];
  if (origin !== undefined && (typeof origin !== 'string' || !INSTANCE_ID.test(origin))) throw refuse('kitefedorigin must be an instance ID.');
  const hops = attributes['kitefedhops'];
  const wholeHops = (typeof hops === 'number' && Number.isSafeInteger(hops) && hops >= 0) || (typeof hops === 'string' && /^\d{1,9}$/.test(hops));
  if (hops !== undefined && !wholeHops) throw refuse('kitefedhops must be a whole number ≥ 0.');
  const rawChain = attributes['kitefedchain'];
  if (rawChain === undefined) return false;
  const chain = chainOf(rawChain);
  if (chain === undefined) throw refuse('kitefedchain must be a string holding a JSON array of instance IDs.');
  return chain.includes(selfInstanceId);
}

/**
 * `kitefedhops` as a JSON integer (contract §5), as stored and as listeners and peers see it: the
 * receiver takes a string of digits too (what a CloudEvents SDK may make of an extension), and
 * stores it as the number it holds. Kite's own deliveries carry a number, so this rewrites nothing
 * on their path.
 */
function withIntegerHops(event: NormalizedEvent): NormalizedEvent {
  const hops = event.provenance?.kitefedhops;
  if (typeof hops !== 'string') return event;
  const number = Number(hops);
  const parsed = JSON.parse(event.json) as Record<string, unknown>;
  parsed['kitefedhops'] = number; // in place: the attribute keeps its position
  return { ...event, json: JSON.stringify(parsed), provenance: { ...event.provenance!, kitefedhops: number } };
}

function chainOf(value: unknown): string[] | undefined {
  if (typeof value !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((id): id is string => typeof id === 'string' && INSTANCE_ID.test(id))) return undefined;
  return parsed;
}
