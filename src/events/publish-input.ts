/**
 * The body of `POST /v1/teams/{team}/events`: one structured CloudEvent from an agent. Kite owns
 * `source` (the agent's URL, so a listener can trust who sent what) and the `kite*` extensions
 * (federation provenance), and fills `specversion`, `id` and `time` so a minimal agent can send
 * just `{"type", "data"}`. Everything else is kept as sent.
 */
import { randomUUID } from 'node:crypto';
import { KiteError } from '../errors.js';
import type { NormalizedEvent } from '../providers/types.js';
import { keepStructuredEvent, parseJsonObject } from './cloudevent-json.js';

const ACCEPTED_MEDIA_TYPES = new Set(['application/json', 'application/cloudevents+json']);

/**
 * Throws KiteError `unsupported_media_type` (415), `invalid_json`, `invalid_body`,
 * `invalid_source` or `reserved_type` (400).
 */
export function parsePublishedEvent(body: Buffer, contentType: string, agentSource: string, now: Date): NormalizedEvent {
  const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase();
  if (!ACCEPTED_MEDIA_TYPES.has(mediaType)) {
    throw new KiteError('unsupported_media_type', 'Publish one CloudEvent as application/json or application/cloudevents+json.');
  }
  const input = parseJsonObject(body.toString('utf8'));
  // null counts as absent, as the CloudEvents JSON format requires.
  if (input.source !== undefined && input.source !== null && input.source !== agentSource) {
    throw new KiteError('invalid_source', `source is set by Kite to ${agentSource}; omit it or send exactly that.`);
  }
  if (input.type === undefined || input.type === null) {
    throw new KiteError('invalid_body', 'type is required.');
  }
  const event = {
    ...input,
    specversion: input.specversion ?? '1.0',
    id: input.id ?? randomUUID(),
    source: agentSource,
  };
  return keepStructuredEvent(event, { receivedAt: now, stripKiteExtensions: true });
}
