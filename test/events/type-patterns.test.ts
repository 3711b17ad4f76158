import { describe, expect, it } from 'vitest';
import { compileTypePatterns, parseTypesParam } from '../../src/events/type-patterns.js';
import { codeOf } from '../support/assertions.js';

const SUCCEEDED = 'com.stripe.payment_intent.succeeded';

/** Reference glob: obviously correct, exponential, fine for short strings. */
function globMatches(pattern: string, text: string): boolean {
  if (pattern === '') return text === '';
  if (pattern[0] === '*') return globMatches(pattern.slice(1), text) || (text !== '' && globMatches(pattern, text.slice(1)));
  return text !== '' && pattern[0] === text[0] && globMatches(pattern.slice(1), text.slice(1));
}

describe('type patterns', () => {
  it('matches com.stripe.* types with or without the com. prefix in the pattern', () => {
    expect(compileTypePatterns(['stripe.*'])(SUCCEEDED)).toBe(true);
    expect(compileTypePatterns(['com.stripe.*'])(SUCCEEDED)).toBe(true);
    expect(compileTypePatterns(['stripe.payment_intent.succeeded'])(SUCCEEDED)).toBe(true);
  });

  it('lets * alone match every type', () => {
    const all = compileTypePatterns(['*']);
    for (const type of [SUCCEEDED, 'kite.federation.peer_state_changed', 'x', '']) expect(all(type)).toBe(true);
  });

  it('lets * match across dots', () => {
    expect(compileTypePatterns(['com.*.succeeded'])(SUCCEEDED)).toBe(true);
    expect(compileTypePatterns(['*.succeeded'])(SUCCEEDED)).toBe(true);
    expect(compileTypePatterns(['*payment*'])(SUCCEEDED)).toBe(true);
  });

  it('never matches part of a type', () => {
    const match = compileTypePatterns(['stripe.payment_intent']);
    expect(match(SUCCEEDED)).toBe(false);
    expect(compileTypePatterns(['payment_intent.*'])(SUCCEEDED)).toBe(false);
    expect(compileTypePatterns(['stripe'])('com.stripe')).toBe(true);
    expect(compileTypePatterns(['stripe'])('com.stripes')).toBe(false);
  });

  it('removes com. only at the start of the type', () => {
    expect(compileTypePatterns(['stripe.*'])('org.com.stripe.x')).toBe(false);
    expect(compileTypePatterns(['stripe.*'])('stripe.x')).toBe(true);
    expect(compileTypePatterns(['stripe.*'])('comxstripe.x')).toBe(false);
    expect(compileTypePatterns(['github.*'])('com.com.github.x')).toBe(false);
  });

  it('treats dots and dashes in a pattern literally', () => {
    expect(compileTypePatterns(['a.b'])('com.axb')).toBe(false);
    expect(compileTypePatterns(['a-b.c'])('a-b.c')).toBe(true);
  });

  it('matches when any pattern of a list matches, and nothing with an empty list', () => {
    const match = compileTypePatterns(['github.*', 'stripe.charge.*']);
    expect(match('com.github.push')).toBe(true);
    expect(match('com.stripe.charge.failed')).toBe(true);
    expect(match(SUCCEEDED)).toBe(false);
    expect(compileTypePatterns([])(SUCCEEDED)).toBe(false);
  });

  it('agrees with a reference glob matcher on many random patterns and types', () => {
    let seed = 42;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
    const pick = (alphabet: string, length: number) => Array.from({ length }, () => alphabet[random(alphabet.length)]).join('');
    for (let i = 0; i < 3000; i++) {
      const pattern = pick('ab.*', 1 + random(6));
      const type = (random(2) ? 'com.' : '') + pick('ab.', random(8));
      const expected = globMatches(pattern, type) || (type.startsWith('com.') && globMatches(pattern, type.slice(4)));
      expect(compileTypePatterns([pattern])(type), `${pattern} vs ${type}`).toBe(expected);
    }
  });

  it('stays fast on patterns that make a naive regexp backtrack', () => {
    const match = compileTypePatterns(['*a*a*a*a*a*a*a*a*a*a*a*b']);
    const started = performance.now();
    expect(match('a'.repeat(20_000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('parses the types parameter, trimming and defaulting to *', () => {
    expect(parseTypesParam(undefined)).toEqual(['*']);
    expect(parseTypesParam('')).toEqual(['*']);
    expect(parseTypesParam(' stripe.* , com.github.push ')).toEqual(['stripe.*', 'com.github.push']);
  });

  it('refuses empty elements, more than 64 patterns and characters outside [A-Za-z0-9._*-]', () => {
    for (const value of ['a,,b', 'a,', ',a', 'a b', 'a/b', 'a?', 'ä', Array(65).fill('a').join(',')]) {
      expect(codeOf(() => parseTypesParam(value)), value).toBe('invalid_input');
    }
    expect(parseTypesParam(Array(64).fill('a').join(','))).toHaveLength(64);
  });
});
