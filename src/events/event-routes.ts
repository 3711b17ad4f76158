/**
 * `GET /v1/teams/{team}/events` (poll the stream by seq) and `POST /v1/teams/{team}/events`
 * (an agent publishes one structured CloudEvent). Contract §3 Events.
 */
import type { AppContext } from '../app-context.js';
import { agentName } from '../auth/principal.js';
import { teamAccess } from '../admin/team-access.js';
import { parseLimit, parseSeq } from '../http/json-body.js';
import type { Route } from '../http/types.js';
import { withDeadline } from '../ingest/ingest-route.js';
import { parsePublishedEvent } from './publish-input.js';
import { parseTypesParam } from './type-patterns.js';

export function eventRoutes(ctx: AppContext): Route[] {
  return [
    {
      method: 'get',
      pattern: '/v1/teams/:team/events',
      handler: async (request) => {
        const { teamId } = await teamAccess(ctx, request, ['admin', 'agent']);
        const after = parseSeq(request.query, 'after') ?? 0;
        const limit = parseLimit(request.query, 100, 1000);
        const patterns = parseTypesParam(request.query.get('types') ?? undefined);
        const events = await ctx.reader.readMatchingAfter(teamId, after, limit, patterns);
        // The body is assembled as text: stored events are spliced in verbatim, never re-parsed.
        const items = events.map((e) => `{"seq":${e.seq},"event":${e.json}}`).join(',');
        const next = events.length > 0 ? events[events.length - 1]!.seq : after;
        return { status: 200, headers: { 'content-type': 'application/json' }, body: `{"items":[${items}],"next":${next}}` };
      },
    },
    {
      method: 'post',
      pattern: '/v1/teams/:team/events',
      handler: async (request) => {
        const { teamId, principal, team } = await teamAccess(ctx, request, ['admin', 'agent']);
        const source = `${ctx.config.publicUrl}/agents/${agentName(principal)}`;
        const event = parsePublishedEvent(request.body, request.headers['content-type'] ?? '', source, request.receivedAt);
        const result = await withDeadline(ctx.appender.append({ teamId, event }));
        ctx.logger.debug({ team, eventId: event.id, seq: result.seq }, 'event published');
        return { status: 202, body: { id: event.id, seq: result.seq, duplicate: result.duplicate } };
      },
    },
  ];
}
