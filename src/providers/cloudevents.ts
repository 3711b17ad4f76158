/**
 * CloudEvents over HTTP (HTTP protocol binding 1.0), signed as Standard Webhooks. Three modes,
 * told apart the way the binding says: by Content-Type first, then by the `ce-specversion` header.
 * - structured: `application/cloudevents+json`, the body is one event;
 * - batch: `application/cloudevents-batch+json`, the body is an array of events (`[]` is valid:
 *   federation peers send it as a probe);
 * - binary: attributes in `ce-*` headers, the body is the data, Content-Type its datacontenttype.
 * A plain `application/json` body without `ce-*` headers is read as structured, since several
 * senders label structured events that way.
 *
 * `parseCloudEvents` is exported without verification so that federation, which verifies with a
 * peer's current and previous keys, can reuse it while keeping its own `kite*` provenance.
 */
import { KiteError } from '../errors.js';
import { keepStructuredEvent, parseJsonText, type KeepOptions } from '../events/cloudevent-json.js';
import { verifyStandardSignature } from './standard-signature.js';
import { standardSecretProblem } from './standard.js';
import type { IncomingWebhook, NormalizedEvent, ParsedWebhook, Provider, SourceContext } from './types.js';

export interface CloudEventsParseOptions {
  /** True for user sources; false only for federation, whose peers set `kitefed*` legitimately. */
  readonly stripKiteExtensions: boolean;
}

function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

function isTextMediaType(mediaType: string): boolean {
  return mediaType.startsWith('text/') || mediaType === 'application/xml' || mediaType.endsWith('+xml');
}

/** Header values are percent-encoded by the binding (3.1.3.2) so they can carry any Unicode. */
function decodeHeaderValue(name: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new KiteError('invalid_body', `The ${name} header is not validly percent-encoded.`);
  }
}

function binaryEvent(request: IncomingWebhook): Record<string, unknown> {
  // Built from entries, not by assignment, so a `ce-__proto__` header cannot touch a prototype.
  const entries: [string, unknown][] = [];
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith('ce-') && name !== 'ce-datacontenttype') {
      entries.push([name.slice(3), decodeHeaderValue(name, value)]);
    }
  }
  const contentType = request.headers['content-type'];
  if (contentType) entries.push(['datacontenttype', contentType]);
  if (request.body.length > 0) {
    const mediaType = mediaTypeOf(contentType);
    // No Content-Type means JSON, as an event without datacontenttype is JSON in the JSON format.
    if (mediaType === '' || isJsonMediaType(mediaType)) {
      entries.push(['data', parseJsonText(request.body.toString('utf8'))]);
    } else if (isTextMediaType(mediaType)) {
      entries.push(['data', request.body.toString('utf8')]);
    } else {
      entries.push(['data_base64', request.body.toString('base64')]);
    }
  }
  return Object.fromEntries(entries);
}

/** Parses an already-verified CloudEvents request. Throws KiteError `invalid_*` or `reserved_type`. */
export function parseCloudEvents(request: IncomingWebhook, options: CloudEventsParseOptions): ParsedWebhook {
  const keep: KeepOptions = { receivedAt: request.receivedAt, stripKiteExtensions: options.stripKiteExtensions };
  const mediaType = mediaTypeOf(request.headers['content-type']);
  if (mediaType === 'application/cloudevents-batch+json') {
    const value = parseJsonText(request.body.toString('utf8'));
    if (!Array.isArray(value)) throw new KiteError('invalid_body', 'A CloudEvents batch must be a JSON array.');
    const events: NormalizedEvent[] = value.map((raw) => keepStructuredEvent(raw, keep));
    return { batch: true, events };
  }
  if (mediaType.startsWith('application/cloudevents')) {
    if (mediaType !== 'application/cloudevents+json') {
      throw new KiteError('invalid_body', 'Only the JSON event format (application/cloudevents+json) is supported.');
    }
    return { batch: false, events: [keepStructuredEvent(parseJsonText(request.body.toString('utf8')), keep)] };
  }
  if (request.headers['ce-specversion'] !== undefined) {
    return { batch: false, events: [keepStructuredEvent(binaryEvent(request), keep)] };
  }
  if (mediaType === 'application/json') {
    return { batch: false, events: [keepStructuredEvent(parseJsonText(request.body.toString('utf8')), keep)] };
  }
  throw new KiteError('invalid_body', 'Send a CloudEvent as application/cloudevents+json, a batch, or in binary mode with ce-* headers.');
}

export const cloudeventsProvider: Provider = {
  name: 'cloudevents',

  validateSecret: standardSecretProblem,

  parse(request: IncomingWebhook, source: SourceContext): ParsedWebhook {
    verifyStandardSignature(request.headers, request.body, [source.secret], request.receivedAt.getTime() / 1000);
    return parseCloudEvents(request, { stripKiteExtensions: true });
  },
};
