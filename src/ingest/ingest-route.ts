/**
 * `POST /hooks/{team}/{source}` (contract §3 Ingest): find the source, let its provider verify
 * and map the request, append through group commit, and answer only once the events committed.
 * Nothing is stored on any 4xx. While the database does not answer, the caller gets 503 within
 * a second; if its event was stored after all, its retry is answered `duplicate: true`.
 */
import type { AppContext } from '../app-context.js';
import { sourceUrl } from '../admin/source-routes.js';
import { coerceError, KiteError } from '../errors.js';
import { json, type KiteRequest, type KiteResponse, type Route } from '../http/types.js';
import { getProvider } from '../providers/index.js';
import type { NormalizedEvent } from '../providers/types.js';
import { TEAM_SLUG } from '../teams/team-directory.js';
import type { AppendResult } from './event-appender.js';

/** How long an ingest waits for its commit before answering 503. */
export const INGEST_DEADLINE_MS = 900;

export function ingestRoutes(ctx: AppContext): Route[] {
  return [{ method: 'post', pattern: '/hooks/:team/:source', handler: (request) => ingest(ctx, request) }];
}

async function ingest(ctx: AppContext, request: KiteRequest): Promise<KiteResponse> {
  const team = request.params['team'] ?? '';
  const sourceName = request.params['source'] ?? '';
  const started = performance.now();
  let outcome = 'stored';
  // Label values come from the URL: only a team and source that exist may become labels, so
  // requests to made-up URLs cannot grow the metric without bound.
  let known = false;
  try {
    const response = await withDeadline(receive(ctx, request, team, sourceName, () => (known = true)));
    outcome = response.outcome;
    return response.response;
  } catch (err) {
    const error = coerceError(err);
    outcome = error.code;
    throw error;
  } finally {
    const labels = { team: known ? team : '-', source: known ? sourceName : '-', outcome };
    ctx.metrics.ingestTotal.inc(labels);
    ctx.metrics.ingestSeconds.observe(labels, (performance.now() - started) / 1000);
  }
}

async function receive(ctx: AppContext, request: KiteRequest, team: string, sourceName: string, found: () => void): Promise<{ response: KiteResponse; outcome: string }> {
  const teamId = TEAM_SLUG.test(team) ? await ctx.teams.find(team) : undefined;
  if (teamId === undefined) throw new KiteError('not_found', `Unknown team ${JSON.stringify(team)}.`);
  const source = await ctx.sources.find(teamId, sourceName);
  if (!source) throw new KiteError('not_found', `Unknown source ${JSON.stringify(sourceName)} in team ${JSON.stringify(team)}.`);
  found();
  const provider = getProvider(source.provider);
  if (!provider) throw new KiteError('internal_error', `Source uses unknown provider ${source.provider}.`);
  const parsed = provider.parse(
    { headers: request.headers, body: request.body, receivedAt: request.receivedAt },
    { team, sourceName, sourceUrl: sourceUrl(ctx.config.publicUrl, team, sourceName), secret: source.secret },
  );
  const results = await ctx.appender.appendMany(parsed.events.map((event) => ({ teamId, event })));
  const items = parsed.events.map((event, i) => answer(event, results[i]!));
  const outcome = results.length > 0 && results.every((r) => r.duplicate) ? 'duplicate' : 'stored';
  if (!parsed.batch) {
    const first = parsed.events[0]!;
    ctx.logger.debug({ team, source: sourceName, eventId: first.id, seq: results[0]!.seq, duplicate: results[0]!.duplicate }, 'webhook stored');
  }
  return { response: json(200, parsed.batch ? { items } : items[0]), outcome };
}

function answer(event: NormalizedEvent, result: AppendResult) {
  return { id: event.id, seq: result.seq, duplicate: result.duplicate };
}

/** Answer 503 rather than hang when the commit takes longer than the deadline. */
export function withDeadline<T>(work: Promise<T>, ms = INGEST_DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KiteError('database_unavailable', 'The database did not answer in time; retry later.')), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
