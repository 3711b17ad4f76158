/**
 * Standard Webhooks senders (Svix and anyone following standardwebhooks.com). The payload follows
 * the spec's recommended shape `{"type", "timestamp", "data"}`; the whole body becomes the event's
 * data, its `type` is namespaced by the source's name, and `webhook-id` is the event id, which is
 * also what the sender reuses on retries, so dedup catches them.
 */
import { KiteError } from '../errors.js';
import { buildEventJson, nonEmptyString, parseEventTime, parseJsonObject } from '../events/cloudevent-json.js';
import { isStandardSecret, verifyStandardSignature } from './standard-signature.js';
import type { IncomingWebhook, ParsedWebhook, Provider, SourceContext } from './types.js';

/** Shared with the `cloudevents` provider, which is signed the same way. */
export function standardSecretProblem(secret: string): string | null {
  return isStandardSecret(secret) ? null : 'The secret must be whsec_ followed by base64, as Standard Webhooks defines.';
}

export const standardProvider: Provider = {
  name: 'standard',

  validateSecret: standardSecretProblem,

  parse(request: IncomingWebhook, source: SourceContext): ParsedWebhook {
    verifyStandardSignature(request.headers, request.body, [source.secret], request.receivedAt.getTime() / 1000);
    const text = request.body.toString('utf8');
    const payload = parseJsonObject(text);
    const type = nonEmptyString(payload.type);
    if (type === undefined) throw new KiteError('invalid_body', 'The payload needs a string type.');
    // A null timestamp reads as absent, as in the CloudEvents JSON format.
    let time = request.receivedAt.toISOString();
    if (payload.timestamp !== undefined && payload.timestamp !== null) {
      const parsed = parseEventTime(payload.timestamp);
      if (parsed === null) throw new KiteError('invalid_body', 'timestamp must be an ISO 8601 time or unix seconds.');
      time = parsed;
    }
    // verifyStandardSignature has checked that webhook-id is present and non-empty.
    const id = request.headers['webhook-id'] as string;
    const event = { id, source: source.sourceUrl, type: `com.${source.sourceName}.${type}`, time };
    return { batch: false, events: [{ ...event, json: buildEventJson({ ...event, dataJson: text }) }] };
  },
};
