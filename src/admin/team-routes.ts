/** `POST /v1/teams` (admin token only) and `GET /v1/teams` (an extension: the admin token lists teams). */
import { z } from 'zod';
import type { AppContext } from '../app-context.js';
import { requireAdminToken } from '../auth/principal.js';
import { parseJsonBody } from '../http/json-body.js';
import { json, type Route } from '../http/types.js';
import { TEAM_SLUG } from '../teams/team-directory.js';

const createTeam = z.object({ slug: z.string().regex(TEAM_SLUG, 'must match ^[a-z0-9][a-z0-9-]{0,62}$') });

export function teamRoutes(ctx: AppContext): Route[] {
  return [
    {
      method: 'post',
      pattern: '/v1/teams',
      handler: async (request) => {
        requireAdminToken(await ctx.auth.authenticate(request.headers));
        const { slug } = parseJsonBody(request, createTeam);
        await ctx.teams.create(slug);
        ctx.logger.info({ team: slug }, 'team created');
        return json(201, { slug });
      },
    },
    {
      method: 'get',
      pattern: '/v1/teams',
      handler: async (request) => {
        requireAdminToken(await ctx.auth.authenticate(request.headers));
        const teams = await ctx.teams.list();
        return json(200, { items: teams.map((t) => ({ slug: t.slug, createdAt: t.createdAt })) });
      },
    },
  ];
}
