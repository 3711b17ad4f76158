/**
 * The same type patterns as `type-patterns.ts`, as one POSIX regex for Postgres (`type ~ $n`),
 * so a filtered poll skips non-matching events in the database. "Matches the whole type or the
 * type without a leading `com.`" is exactly `^(com\.)?(<pattern>)$`.
 * Returns undefined when the patterns match everything (no filter needed).
 */
export function typePatternsToSqlRegex(patterns: readonly string[]): string | undefined {
  if (patterns.length === 0 || patterns.includes('*')) return undefined;
  const alternatives = patterns.map((p) => p.replace(/[.+?^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*'));
  return `^(com\\.)?(${alternatives.join('|')})$`;
}
