/** Writes a scenario's results as JSON: bench/results/<scenario>-<timestamp>.json and <scenario>-latest.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: scripts run from dist/bench/lib/, sources live in bench/lib/. */
export const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

/**
 * A profiled run (`--profile`: the server is slower under the profiler) is written as
 * `<scenario>-profiled-<timestamp>.json` and leaves `<scenario>-latest.json` alone.
 */
export function writeResults(scenario: string, data: unknown, profiled = false): { file: string; latest: string | undefined } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(RESULTS_DIR, `${scenario}${profiled ? '-profiled' : ''}-${stamp}.json`);
  const latest = profiled ? undefined : path.join(RESULTS_DIR, `${scenario}-latest.json`);
  const text = `${JSON.stringify(data, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`;
  writeFileSync(file, text);
  if (latest) writeFileSync(latest, text);
  return { file: path.relative(ROOT, file), latest: latest && path.relative(ROOT, latest) };
}

/** What a scenario hands back to run.ts: one summary line per level, and where the JSON went. */
export interface ScenarioOutcome {
  readonly scenario: string;
  readonly summary: readonly string[];
  readonly file: string;
}

/** True when this module is the script node was started with (`node dist/bench/<scenario>.js`). */
export function isMain(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(moduleUrl);
}
