/** Team API keys (contract §3 Admin): create (the key is shown once), list, revoke. */
import { z } from 'zod';
import type { AppContext } from '../app-context.js';
import { parseJsonBody } from '../http/json-body.js';
import { json, type Route } from '../http/types.js';
import { teamAccess } from './team-access.js';

const createKey = z.object({
  // The name becomes part of the agent's event source URL (…/agents/<name>).
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'must be 1–100 letters, digits, ".", "_" or "-", starting with a letter or digit'),
  role: z.enum(['admin', 'agent'], { message: 'must be "admin" or "agent"' }),
});

export function keyRoutes(ctx: AppContext): Route[] {
  return [
    {
      method: 'post',
      pattern: '/v1/teams/:team/keys',
      handler: async (request) => {
        const { teamId, team } = await teamAccess(ctx, request, ['admin']);
        const { name, role } = parseJsonBody(request, createKey);
        const created = await ctx.keys.create(teamId, name, role);
        ctx.logger.info({ team, keyId: created.id, role }, 'key created');
        return json(201, { id: created.id, name: created.name, role: created.role, key: created.key, createdAt: created.createdAt });
      },
    },
    {
      method: 'get',
      pattern: '/v1/teams/:team/keys',
      handler: async (request) => {
        const { teamId } = await teamAccess(ctx, request, ['admin']);
        return json(200, { items: await ctx.keys.list(teamId) });
      },
    },
    {
      method: 'del',
      pattern: '/v1/teams/:team/keys/:id',
      handler: async (request) => {
        const { teamId, team } = await teamAccess(ctx, request, ['admin']);
        const id = request.params['id'] ?? '';
        await ctx.keys.revoke(teamId, id);
        // Close this node's listeners now; other nodes do it on the kite_config notification.
        ctx.hub.closeByKey(id);
        ctx.logger.info({ team, keyId: id }, 'key revoked');
        return { status: 204 };
      },
    },
  ];
}
