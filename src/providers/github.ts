/**
 * GitHub webhooks: `X-Hub-Signature-256: sha256=<hex hmac-sha256(secret, raw body)>`. GitHub signs
 * no timestamp, so there is no freshness window; replays are caught by dedup on X-GitHub-Delivery.
 * A webhook configured with content type `application/x-www-form-urlencoded` sends the same JSON
 * in a `payload` form field, signed over the form body; both are accepted.
 */
import { KiteError } from '../errors.js';
import { buildEventJson, nonEmptyString, parseJsonObject } from '../events/cloudevent-json.js';
import { hmacSecretProblem, hmacSha256Hex, safeEqual } from './hmac.js';
import type { IncomingWebhook, ParsedWebhook, Provider, SourceContext } from './types.js';

const PREFIX = 'sha256=';

/** Throws KiteError `invalid_signature` unless `header` is `sha256=<hex>` of `body` under `secret`. */
export function verifyGithubSignature(header: string | undefined, body: Buffer, secret: string): void {
  if (!header || !header.startsWith(PREFIX)) {
    throw new KiteError('invalid_signature', 'Missing X-Hub-Signature-256 header.');
  }
  if (!safeEqual(hmacSha256Hex(secret, [body]), header.slice(PREFIX.length))) {
    throw new KiteError('invalid_signature');
  }
}

function payloadText(request: IncomingWebhook): string {
  const text = request.body.toString('utf8');
  const contentType = request.headers['content-type'] ?? '';
  if (!contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) return text;
  const payload = new URLSearchParams(text).get('payload');
  if (payload === null) throw new KiteError('invalid_body', 'The form body has no payload field.');
  return payload;
}

export const githubProvider: Provider = {
  name: 'github',

  validateSecret: hmacSecretProblem,

  parse(request: IncomingWebhook, source: SourceContext): ParsedWebhook {
    verifyGithubSignature(request.headers['x-hub-signature-256'], request.body, source.secret);
    const eventName = nonEmptyString(request.headers['x-github-event']?.trim());
    const id = nonEmptyString(request.headers['x-github-delivery']?.trim());
    if (eventName === undefined || id === undefined) {
      throw new KiteError('invalid_body', 'A GitHub delivery needs X-GitHub-Event and X-GitHub-Delivery headers.');
    }
    const dataJson = payloadText(request);
    const payload = parseJsonObject(dataJson);
    const action = nonEmptyString(payload.action);
    const type = action === undefined ? `com.github.${eventName}` : `com.github.${eventName}.${action}`;
    const event = { id, source: source.sourceUrl, type, time: request.receivedAt.toISOString() };
    return { batch: false, events: [{ ...event, json: buildEventJson({ ...event, dataJson }) }] };
  },
};
