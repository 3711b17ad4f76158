/**
 * The structured-mode CloudEvent JSON that Kite stores, broadcasts and forwards.
 *
 * Provider webhooks (Stripe, GitHub, Standard Webhooks) take the fast path, `buildEventJson`: the
 * raw body is already valid JSON, so it is spliced in as `data` verbatim instead of being parsed
 * back into text, which saves a JSON.stringify of every payload and keeps its bytes (big integers,
 * key order) exactly as the sender wrote them. Events that arrive as CloudEvents (the
 * `cloudevents` provider, agents publishing, peers) go through `keepStructuredEvent`, which checks
 * them and keeps them as sent.
 */
import { KiteError } from '../errors.js';
import type { NormalizedEvent } from '../providers/types.js';

export type ExtensionValue = string | number | boolean;

export interface EventJsonInput {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  /** ISO 8601 UTC, see toIsoTime. */
  readonly time: string;
  /** Already-valid JSON text, e.g. the raw webhook body. */
  readonly dataJson: string;
  readonly extensions?: Readonly<Record<string, ExtensionValue>>;
}

/** CloudEvents attribute names: lower-case letters and digits only (spec 1.0, "Attribute Naming"). */
const ATTRIBUTE_NAME = /^[a-z0-9]+$/;

export function buildEventJson(input: EventJsonInput): string {
  const data = input.dataJson.trim();
  // An empty splice would store invalid JSON that fails far from here; fail at the cause instead.
  if (data.length === 0) throw new Error('buildEventJson: dataJson is empty');
  let json =
    '{"specversion":"1.0","id":' + JSON.stringify(input.id) +
    ',"source":' + JSON.stringify(input.source) +
    ',"type":' + JSON.stringify(input.type) +
    ',"time":' + JSON.stringify(input.time) +
    ',"datacontenttype":"application/json"';
  if (input.extensions) {
    for (const [name, value] of Object.entries(input.extensions)) {
      if (!ATTRIBUTE_NAME.test(name)) throw new Error(`buildEventJson: bad extension name ${name}`);
      json += ',' + JSON.stringify(name) + ':' + JSON.stringify(value);
    }
  }
  return json + ',"data":' + data + '}';
}

/** ISO 8601 UTC with milliseconds, from a Date or from unix seconds (fractions allowed). */
export function toIsoTime(value: Date | number): string {
  return (typeof value === 'number' ? new Date(value * 1000) : value).toISOString();
}

/** Event types starting with `kite.` belong to Kite itself (federation state, delivery failures). */
export function isReservedType(type: string): boolean {
  return type.startsWith('kite.');
}

// Years 0000–9999 only: beyond them toISOString switches to the six-digit `+010000-…` form, which
// is not what anyone downstream parses; a unix time in milliseconds sent as seconds lands there.
const MIN_MS = Date.parse('0000-01-01T00:00:00.000Z');
const MAX_MS = Date.parse('9999-12-31T23:59:59.999Z');
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * An event time as sent (an RFC 3339 string, or unix seconds as a JSON number) normalised to ISO
 * 8601 UTC, or null when it is not one. Date.parse alone is too lenient (it reads "March 7, 2020"
 * and rolls 2022-02-30 over into March), hence the pattern and the day-of-month check.
 */
export function parseEventTime(value: unknown): string | null {
  let ms: number;
  if (typeof value === 'number') {
    ms = value * 1000;
  } else if (typeof value === 'string') {
    const m = RFC3339.exec(value);
    if (!m) return null;
    const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const days = (DAYS_IN_MONTH[month - 1] ?? 0) + (month === 2 && isLeap(year) ? 1 : 0);
    // RFC 3339 has no hour 24, which Date.parse would roll over into the next day.
    if (day < 1 || day > days || Number(m[4]) > 23) return null;
    ms = Date.parse(value);
  } else {
    return null;
  }
  if (!Number.isFinite(ms) || ms < MIN_MS || ms > MAX_MS) return null;
  return new Date(ms).toISOString();
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** JSON.parse that answers 400 `invalid_json` instead of throwing a SyntaxError. */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new KiteError('invalid_json');
  }
}

/** Parses a body that must be one JSON object (not an array, string or null). */
export function parseJsonObject(text: string): Record<string, unknown> {
  const value = parseJsonText(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new KiteError('invalid_body', 'The body must be a JSON object.');
  }
  return value as Record<string, unknown>;
}

/** A non-empty string field of a payload, or undefined. */
export function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

const CORE_STRINGS = ['datacontenttype', 'dataschema', 'subject'] as const;
const PROVENANCE = new Set(['kitefedorigin', 'kitefedchain', 'kitefedhops']);
/**
 * The characters of base64 (RFC 4648 §4, and §5's URL-safe ones, padded or not, as SDKs vary): what
 * is not even that (`%%%`) is refused rather than stored as bytes nobody can decode.
 */
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export interface KeepOptions {
  /** Fills `time` when the event has none. */
  readonly receivedAt: Date;
  /** Drop every `kite*` extension; otherwise (events from a peer) all but the provenance ones. */
  readonly stripKiteExtensions: boolean;
}

/**
 * Checks one structured CloudEvent and returns it as Kite keeps it: as sent, minus `kite*`
 * extensions when asked, with `time` filled when absent. Null attributes count as absent, as the
 * JSON event format requires. Throws KiteError `invalid_body` or `reserved_type`.
 */
export function keepStructuredEvent(raw: unknown, options: KeepOptions): NormalizedEvent {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new KiteError('invalid_body', 'A CloudEvent must be a JSON object.');
  }
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (name === 'data') { kept.data = value; continue; }
    if (value === null) continue;
    if (name === 'data_base64') {
      if (typeof value !== 'string' || !BASE64.test(value)) throw invalid('data_base64 must be a base64 string.');
      kept.data_base64 = value;
      continue;
    }
    // The name check comes before the assignment, so `__proto__` can never reach `kept`.
    if (!ATTRIBUTE_NAME.test(name)) throw invalid(`"${name}" is not a CloudEvents attribute name (lower-case letters and digits).`);
    // From a peer, only the provenance: another `kite*` extension is no more a peer's to set than a
    // webhook sender's.
    if (name.startsWith('kite') && (options.stripKiteExtensions || !PROVENANCE.has(name))) continue;
    if (typeof value === 'object') throw invalid(`The attribute "${name}" must be a string, number or boolean.`);
    kept[name] = value;
  }
  if (kept.specversion !== '1.0') throw invalid('specversion must be "1.0".');
  for (const name of ['id', 'source', 'type'] as const) {
    const value = kept[name];
    if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string.`);
  }
  const type = kept.type as string;
  if (isReservedType(type)) throw new KiteError('reserved_type');
  for (const name of CORE_STRINGS) {
    const value = kept[name];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw invalid(`${name} must be a non-empty string.`);
  }
  if ('data' in kept && 'data_base64' in kept) throw invalid('An event carries data or data_base64, not both.');
  let time: string;
  if (kept.time === undefined) {
    time = options.receivedAt.toISOString();
    kept.time = time;
  } else {
    const parsed = typeof kept.time === 'string' ? parseEventTime(kept.time) : null;
    if (parsed === null) throw invalid('time must be an RFC 3339 timestamp.');
    time = parsed;
  }
  const event = { id: kept.id as string, source: kept.source as string, type, time, json: eventText(kept) };
  if (options.stripKiteExtensions || !('kitefedorigin' in kept || 'kitefedchain' in kept || 'kitefedhops' in kept)) return event;
  return { ...event, provenance: { kitefedorigin: kept['kitefedorigin'], kitefedchain: kept['kitefedchain'], kitefedhops: kept['kitefedhops'] } };
}

function invalid(message: string): KiteError {
  return new KiteError('invalid_body', message);
}

/**
 * The event as text. `data` nested some thousands of levels deep overflows JSON.stringify's stack
 * (a RangeError, which answered 500): it is a body Kite cannot keep, so a 400.
 */
function eventText(kept: Record<string, unknown>): string {
  try {
    return JSON.stringify(kept);
  } catch (err) {
    if (err instanceof RangeError) throw invalid('The event is nested too deeply to store.');
    throw err;
  }
}
