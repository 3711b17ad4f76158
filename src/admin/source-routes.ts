/** Webhook sources (contract §3 Admin): add, list, remove. */
import { z } from 'zod';
import type { AppContext } from '../app-context.js';
import { KiteError } from '../errors.js';
import { parseJsonBody } from '../http/json-body.js';
import { json, type Route } from '../http/types.js';
import { getProvider, PROVIDER_NAMES } from '../providers/index.js';
import { teamAccess } from './team-access.js';

const createSource = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must match ^[a-z0-9][a-z0-9-]{0,62}$'),
  provider: z.string(),
  secret: z.string().min(1, 'must not be empty').max(1024, 'must be at most 1024 characters'),
});

export function sourceUrl(publicUrl: string, team: string, name: string): string {
  return `${publicUrl}/hooks/${team}/${name}`;
}

export function sourceRoutes(ctx: AppContext): Route[] {
  return [
    {
      method: 'post',
      pattern: '/v1/teams/:team/sources',
      handler: async (request) => {
        const { teamId, team } = await teamAccess(ctx, request, ['admin']);
        const input = parseJsonBody(request, createSource);
        if (input.name === 'kite') throw new KiteError('reserved_name', 'The source name "kite" is reserved for federation.');
        const provider = getProvider(input.provider);
        if (!provider) throw new KiteError('invalid_provider', `Unknown provider ${JSON.stringify(input.provider)}; use one of ${PROVIDER_NAMES.join(', ')}.`);
        const secretProblem = provider.validateSecret(input.secret);
        if (secretProblem) throw new KiteError('invalid_input', `secret: ${secretProblem}`);
        const source = await ctx.sources.create(teamId, input.name, provider.name, input.secret);
        ctx.logger.info({ team, source: source.name, provider: source.provider }, 'source created');
        return json(201, { name: source.name, provider: source.provider, url: sourceUrl(ctx.config.publicUrl, team, source.name), createdAt: source.createdAt });
      },
    },
    {
      method: 'get',
      pattern: '/v1/teams/:team/sources',
      handler: async (request) => {
        const { teamId, team } = await teamAccess(ctx, request, ['admin']);
        const sources = await ctx.sources.list(teamId);
        return json(200, {
          items: sources.map((s) => ({ name: s.name, provider: s.provider, url: sourceUrl(ctx.config.publicUrl, team, s.name), createdAt: s.createdAt })),
        });
      },
    },
    {
      method: 'del',
      pattern: '/v1/teams/:team/sources/:name',
      handler: async (request) => {
        const { teamId, team } = await teamAccess(ctx, request, ['admin']);
        const name = request.params['name'] ?? '';
        await ctx.sources.remove(teamId, name);
        ctx.logger.info({ team, source: name }, 'source removed');
        return { status: 204 };
      },
    },
  ];
}
