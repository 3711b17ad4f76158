/**
 * The status page's static files (src/ui/assets: one HTML page, one script, one stylesheet; no
 * framework, no bundler), read once at start and served from memory. They are found from this
 * module's own location, so the same lookup works when running the TypeScript sources (tests)
 * and the build in dist/ (`kite serve`), which sits one folder deeper next to the sources.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface UiAsset {
  readonly body: Buffer;
  readonly contentType: string;
}

const FILES: Readonly<Record<string, string>> = {
  'status.html': 'text/html; charset=utf-8',
  'status.js': 'text/javascript; charset=utf-8',
  'status.css': 'text/css; charset=utf-8',
};

/** src/ui/assets, seen from src/ui/ (sources) or dist/src/ui/ (build). */
export function assetsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'assets'), path.resolve(here, '../../../src/ui/assets')];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'status.html')));
  if (!found) throw new Error(`The status page's files are missing (looked in ${candidates.join(' and ')})`);
  return found;
}

export function loadUiAssets(dir = assetsDir()): ReadonlyMap<string, UiAsset> {
  return new Map(Object.entries(FILES).map(([name, contentType]) => [name, { body: readFileSync(path.join(dir, name)), contentType }]));
}
