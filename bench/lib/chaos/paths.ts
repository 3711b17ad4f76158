/**
 * The build the chaos nodes run. A run starts and restarts nodes for minutes; in a checkout where
 * someone rebuilds `dist/` meanwhile, a restarted node would run other code than its peers (or a
 * half-written build). So a run takes a private copy of the build when it starts — dist/src,
 * dist/machines, src/, migrations/, package.json, node_modules linked — and every (re)start uses it.
 */
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function repositoryRoot(): string {
  // From bench/lib/chaos/ (vitest runs the source) or dist/bench/lib/chaos/ (the bench).
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('chaos: cannot find the repository root (package.json)');
    dir = parent;
  }
  return dir;
}

export interface Build {
  /** dist/src/cli/main.js in the copy. */
  readonly cli: string;
  /** The orphan guard preloaded into every node. */
  readonly orphanGuard: string;
  remove(): void;
}

export function snapshotBuild(): Build {
  const root = repositoryRoot();
  const wanted = ['dist/src/cli/main.js', 'dist/bench/lib/chaos/orphan-guard.js'];
  for (const file of wanted) {
    if (!existsSync(path.join(root, file))) throw new Error(`chaos: ${file} is missing; run \`npm run build\` first`);
  }
  const copy = mkdtempSync(path.join(tmpdir(), 'kite-chaos-build-'));
  // src/ too: the server reads files from it at run time (the status page's assets).
  for (const part of ['dist/src', 'dist/machines', 'dist/bench/lib/chaos/orphan-guard.js', 'src', 'migrations', 'package.json']) {
    cpSync(path.join(root, part), path.join(copy, part), { recursive: true });
  }
  symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
  return {
    cli: path.join(copy, wanted[0]!),
    orphanGuard: path.join(copy, wanted[1]!),
    remove: () => rmSync(copy, { recursive: true, force: true }),
  };
}
