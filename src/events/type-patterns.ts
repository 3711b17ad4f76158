/**
 * Event type patterns, used by listeners (`?types=`) and peers (`scopes`), contract §4: `*`
 * matches any run of characters (dots included), and a pattern matches a type if it matches the
 * whole type or the type with a leading `com.` removed, so `stripe.*` and `com.stripe.*` both
 * match `com.stripe.payment_intent.succeeded`.
 *
 * A list compiles to one RegExp, run once per event per listener. A naive `.*` per star would
 * backtrack polynomially (a pattern like `*a*a*a*a*b` against a long type can take seconds), so
 * each middle segment is matched at its first occurrence inside an atomic lookahead: for patterns
 * whose only wildcard is `*`, the leftmost placement of each segment is always a correct one, and
 * the match stays linear in the type's length.
 */
import { KiteError } from '../errors.js';

export const MAX_TYPE_PATTERNS = 64;
export const MAX_TYPE_PATTERN_LENGTH = 256;
const PATTERN_CHARS = /^[A-Za-z0-9._*-]+$/;

const always = (): boolean => true;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function compileTypePatterns(patterns: readonly string[]): (type: string) => boolean {
  if (patterns.length === 0) return () => false;
  if (patterns.some((p) => /^\*+$/.test(p))) return always;
  let group = 0;
  const alternatives = patterns.map((pattern) => {
    const segments = pattern.split('*');
    if (segments.length === 1) return escapeRegExp(pattern);
    let source = escapeRegExp(segments[0]!);
    for (const segment of segments.slice(1, -1)) {
      if (segment.length === 0) continue; // `**` is the same as `*`
      group += 1;
      // JS lookaheads are atomic: once the first occurrence is found it is never revisited.
      source += `(?=([\\s\\S]*?${escapeRegExp(segment)}))\\${group}`;
    }
    return source + '[\\s\\S]*' + escapeRegExp(segments[segments.length - 1]!);
  });
  const regexp = new RegExp(`^(?:com\\.)?(?:${alternatives.join('|')})$`);
  return (type) => regexp.test(type);
}

/**
 * Checks a list of patterns (the parsed `types` parameter, or a peer's `scopes`), naming `what`
 * in the error so the caller's field is clear. Throws KiteError `invalid_input`.
 */
export function checkTypePatterns(patterns: readonly string[], what = 'types'): string[] {
  if (patterns.length > MAX_TYPE_PATTERNS) {
    throw new KiteError('invalid_input', `${what} has ${patterns.length} patterns; at most ${MAX_TYPE_PATTERNS} are allowed.`);
  }
  for (const pattern of patterns) {
    if (pattern.length === 0) {
      throw new KiteError('invalid_input', `${what} has an empty pattern; look for a doubled or trailing comma.`);
    }
    if (pattern.length > MAX_TYPE_PATTERN_LENGTH) {
      throw new KiteError('invalid_input', `A ${what} pattern is longer than ${MAX_TYPE_PATTERN_LENGTH} characters.`);
    }
    if (!PATTERN_CHARS.test(pattern)) {
      throw new KiteError('invalid_input', `The ${what} pattern "${pattern}" may contain only letters, digits, ".", "_", "-" and "*".`);
    }
  }
  return [...patterns];
}

/** `?types=a.*,b.*` → ['a.*', 'b.*']; absent or empty → ['*']. */
export function parseTypesParam(value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') return ['*'];
  return checkTypePatterns(value.split(',').map((p) => p.trim()));
}
