/**
 * The Peers API (contract §6): create, list, show, patch, delete and redrive a team's peers, and
 * list its deliveries. Team admin key or the admin token. Keys are shown once, in the answer to
 * the create; no other answer carries them.
 */
import type { AppContext } from '../app-context.js';
import { teamAccess } from '../admin/team-access.js';
import { KiteError } from '../errors.js';
import { parseJsonBody, parseLimit } from '../http/json-body.js';
import { json, type KiteRequest, type Route } from '../http/types.js';
import { z } from 'zod';
import { DELIVERY_STATUSES, type DeliveryRecord, type DeliveryStatus } from './delivery-listing.js';
import { mergeSettings, parseNewPeer, parsePeerPatch } from './peer-input.js';
import type { PeerWithCounts } from './peer-record.js';
import type { PeerStore } from './peer-store.js';

const anyJson = z.unknown();

/** The peer object of contract §6: never a key. */
export function peerObject(peer: PeerWithCounts) {
  return {
    id: peer.id,
    instanceId: peer.instanceId,
    url: peer.url,
    remoteTeam: peer.remoteTeam,
    scopes: peer.scopes,
    maxHops: peer.maxHops,
    rateLimit: peer.rateLimit,
    inboundRateLimit: peer.inboundRateLimit,
    retry: peer.retry,
    enabled: peer.enabled,
    state: peer.state,
    pending: peer.pending,
    delivered: peer.delivered,
    deadLettered: peer.deadLettered,
    lastError: peer.lastError,
    createdAt: peer.createdAt.toISOString(),
  };
}

function deliveryObject(d: DeliveryRecord) {
  return {
    id: d.id,
    eventId: d.eventId,
    eventSource: d.eventSource,
    eventType: d.eventType,
    peerId: d.peerId,
    status: d.status,
    attempts: d.attempts,
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    createdAt: d.createdAt.toISOString(),
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
  };
}

function peerIdParam(request: KiteRequest): string {
  return request.params['id'] ?? '';
}

export function peerRoutes(ctx: AppContext, peers: PeerStore): Route[] {
  const admin = (request: KiteRequest) => teamAccess(ctx, request, ['admin']);
  return [
    {
      method: 'post',
      pattern: '/v1/teams/:team/peers',
      handler: async (request) => {
        const { teamId, team } = await admin(request);
        const input = parseNewPeer(parseJsonBody(request, anyJson), team, ctx.config.instanceId);
        const peer = await peers.create(teamId, input);
        ctx.logger.info({ team, peer: peer.id, instanceId: peer.instanceId }, 'peer created');
        return json(201, { ...peerObject(peer), outboundKey: input.outboundKey, inboundKey: input.inboundKey });
      },
    },
    {
      method: 'get',
      pattern: '/v1/teams/:team/peers',
      handler: async (request) => {
        const { teamId } = await admin(request);
        return json(200, { items: (await peers.listWithCounts(teamId)).map(peerObject) });
      },
    },
    {
      method: 'get',
      pattern: '/v1/teams/:team/peers/:id',
      handler: async (request) => {
        const { teamId } = await admin(request);
        return json(200, peerObject(await peers.getWithCounts(teamId, peerIdParam(request))));
      },
    },
    {
      method: 'patch',
      pattern: '/v1/teams/:team/peers/:id',
      handler: async (request) => {
        const { teamId, team } = await admin(request);
        const patch = parsePeerPatch(parseJsonBody(request, anyJson), ctx.config.instanceId);
        // A partial rateLimit/inboundRateLimit/retry keeps the peer's current value for each missing
        // field (PATCH semantics); the defaults apply only at creation.
        const peer = await peers.update(teamId, peerIdParam(request), (current) => ({
          settings: mergeSettings(current, patch),
          ...(patch.outboundKey !== undefined ? { outboundKey: patch.outboundKey } : {}),
          ...(patch.inboundKey !== undefined ? { inboundKey: patch.inboundKey } : {}),
        }));
        ctx.logger.info({ team, peer: peer.id, fields: Object.keys(patch) }, 'peer changed');
        return json(200, peerObject(peer));
      },
    },
    {
      method: 'del',
      pattern: '/v1/teams/:team/peers/:id',
      handler: async (request) => {
        const { teamId, team } = await admin(request);
        await peers.remove(teamId, peerIdParam(request));
        ctx.logger.info({ team, peer: peerIdParam(request) }, 'peer deleted');
        return { status: 204 };
      },
    },
    {
      method: 'post',
      pattern: '/v1/teams/:team/peers/:id/redrive',
      handler: async (request) => {
        const { teamId, team } = await admin(request);
        const requeued = await peers.redrive(teamId, peerIdParam(request));
        ctx.logger.info({ team, peer: peerIdParam(request), requeued }, 'peer redriven');
        return json(200, { requeued });
      },
    },
    {
      method: 'get',
      pattern: '/v1/teams/:team/deliveries',
      handler: async (request) => {
        const { teamId } = await admin(request);
        const limit = parseLimit(request.query, 100, 1000);
        const status = parseStatus(request.query.get('status'));
        const peerId = request.query.get('peer') || undefined;
        // An unknown `peer` is a 404, not an empty list: a typo in an id should not read as "no
        // deliveries". A deleted peer is known (its history stays readable); another team's is not.
        if (peerId !== undefined && !(await peers.existsInTeam(teamId, peerId))) {
          throw new KiteError('not_found', `Peer ${JSON.stringify(peerId)} does not exist in this team.`);
        }
        const items = await peers.listDeliveries(teamId, { limit, ...(status ? { status } : {}), ...(peerId !== undefined ? { peerId } : {}) });
        return json(200, { items: items.map(deliveryObject) });
      },
    },
  ];
}

function parseStatus(raw: string | null): DeliveryStatus | undefined {
  if (raw === null || raw === '') return undefined;
  if ((DELIVERY_STATUSES as readonly string[]).includes(raw)) return raw as DeliveryStatus;
  throw new KiteError('invalid_input', `status must be one of ${DELIVERY_STATUSES.join(', ')}.`);
}
