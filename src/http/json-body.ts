/**
 * Parses a JSON request body against a zod schema: 400 `invalid_json` when it is not JSON,
 * 400 `invalid_input` naming the first offending field otherwise.
 */
import type { z } from 'zod';
import { KiteError } from '../errors.js';
import type { KiteRequest } from './types.js';

export function parseJsonBody<S extends z.ZodType>(request: KiteRequest, schema: S): z.infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(request.body.toString('utf8'));
  } catch {
    throw new KiteError('invalid_json', 'The body is not valid JSON.');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
    throw new KiteError('invalid_input', `${field}: ${issue.message}`);
  }
  return parsed.data;
}

/** A `limit` query parameter: default when absent, 400 `invalid_limit` outside 1..max. */
export function parseLimit(query: URLSearchParams, fallback: number, max: number): number {
  const raw = query.get('limit');
  if (raw === null) return fallback;
  const limit = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(limit) || limit < 1 || limit > max) {
    throw new KiteError('invalid_limit', `limit must be a whole number from 1 to ${max}.`);
  }
  return limit;
}

/** A non-negative seq query parameter such as `after`. */
export function parseSeq(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const seq = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(seq)) {
    throw new KiteError('invalid_input', `${name} must be a whole number ≥ 0.`);
  }
  return seq;
}
