/**
 * The layout rules of CONVENTIONS.md ("Shape", "Config"), enforced by reading the source:
 * - `machines/` imports only `xstate` and its own files (no pg, pg-boss, pino, uWebSockets.js,
 *   node:* or src/);
 * - only `src/http/` imports uWebSockets.js (bench/ may, for its baselines);
 * - only `src/config.ts` reads `process.env` in src/;
 * - nothing in src/ or machines/ imports from test/.
 * Imports are read with TypeScript's own pre-processor, so comments and strings never count and
 * static, type-only, re-export, dynamic and require() imports all do. The checkers are tested on
 * samples first, so the suite fails on a bad import even while machines/ is still empty.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CODE = /\.(?:[cm]?[jt]s|tsx)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', 'coverage', 'results']);

/** Every code file under `dir` (relative to the repository root), as repo-relative paths with '/'. */
function codeFiles(dir: string): string[] {
  const abs = path.join(ROOT, dir);
  if (!existsSync(abs)) return [];
  const out: string[] = [];
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name)) walk(path.join(current, entry.name));
      } else if (CODE.test(entry.name) && !entry.name.endsWith('.d.ts')) {
        out.push(path.relative(ROOT, path.join(current, entry.name)).split(path.sep).join('/'));
      }
    }
  };
  walk(abs);
  return out.sort();
}

/** Every module specifier a file imports: import/export … from, import type, import(), require(). */
function importSpecifiers(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

function packageOf(specifier: string): string {
  if (specifier.startsWith('@')) return specifier.split('/').slice(0, 2).join('/');
  return specifier.split('/')[0]!;
}

function isRelative(specifier: string): boolean {
  return specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../');
}

/** The repo-relative path a relative specifier of `file` points at. */
function resolveRelative(file: string, specifier: string): string {
  return path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
}

function isUnder(relPath: string, dir: string): boolean {
  return relPath === dir || relPath.startsWith(`${dir}/`);
}

/** machines/: only `xstate` (and its subpaths) and relative files that stay inside machines/. */
function machineImportViolations(file: string, source: string): string[] {
  return importSpecifiers(source)
    .filter((spec) => (isRelative(spec) ? !isUnder(resolveRelative(file, spec), 'machines') : packageOf(spec) !== 'xstate'))
    .map((spec) => `${file} imports ${spec}`);
}

/** uWebSockets.js only from src/http/ (and bench/). */
function uwsImportViolations(file: string, source: string): string[] {
  if (isUnder(file, 'src/http') || isUnder(file, 'bench')) return [];
  return importSpecifiers(source)
    .filter((spec) => packageOf(spec) === 'uWebSockets.js')
    .map((spec) => `${file} imports ${spec}`);
}

/** Nothing in src/ or machines/ reaches into test/. */
function testImportViolations(file: string, source: string): string[] {
  return importSpecifiers(source)
    .filter((spec) => (isRelative(spec) ? isUnder(resolveRelative(file, spec), 'test') : /^(?:\/|[A-Za-z]:)?.*\/test\//.test(spec) || spec.startsWith('test/')))
    .map((spec) => `${file} imports ${spec}`);
}

/**
 * Reads of the environment, found in the syntax tree (comments and strings do not count):
 * `process.env`, `process['env']`, `globalThis.process.env`, `const { env } = process`, and
 * importing `env` from 'process' / 'node:process'.
 */
function envReads(file: string, source: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const found: string[] = [];
  const isProcess = (node: ts.Expression): boolean =>
    (ts.isIdentifier(node) && node.text === 'process') ||
    (ts.isPropertyAccessExpression(node) && node.name.text === 'process');
  const report = (node: ts.Node) => {
    const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    found.push(`${file}:${line + 1}: ${node.getText(sf).slice(0, 60)}`);
  };
  const visit = (node: ts.Node) => {
    if (ts.isPropertyAccessExpression(node) && node.name.text === 'env' && isProcess(node.expression)) report(node);
    if (ts.isElementAccessExpression(node) && isProcess(node.expression) && ts.isStringLiteralLike(node.argumentExpression) && node.argumentExpression.text === 'env') report(node);
    if (ts.isVariableDeclaration(node) && node.initializer && isProcess(node.initializer) && ts.isObjectBindingPattern(node.name)) {
      if (node.name.elements.some((e) => (e.propertyName ?? e.name).getText(sf) === 'env')) report(node);
    }
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && ['process', 'node:process'].includes(node.moduleSpecifier.text)) {
      const bindings = node.importClause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings) && bindings.elements.some((e) => (e.propertyName ?? e.name).text === 'env')) report(node);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function read(file: string): string {
  return readFileSync(path.join(ROOT, file), 'utf8');
}

/** Project code outside bench/ and the build output: where the uWebSockets.js rule applies. */
function projectCodeFiles(): string[] {
  const topLevel = readdirSync(ROOT, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of topLevel) {
    if (entry.isDirectory() && !SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.') && entry.name !== 'bench') files.push(...codeFiles(entry.name));
    if (entry.isFile() && CODE.test(entry.name)) files.push(entry.name);
  }
  return files;
}

describe('layout - the checkers themselves', () => {
  it('layout - import specifiers include type-only, re-export, dynamic and require imports, not comments or strings', () => {
    const source = [
      "import a from 'a';",
      "import type { B } from './b.js';",
      "import {",
      "  c1,",
      "  c2,",
      "} from 'c';",
      "export * from 'd';",
      "export { e } from 'e';",
      "import 'f';",
      "const g = await import('g');",
      "const h = require('h');",
      "// import x from 'commented';",
      "/* import y from 'block'; */",
      "const s = \"import z from 'in-a-string'\";",
    ].join('\n');
    expect(importSpecifiers(source)).toEqual(['a', './b.js', 'c', 'd', 'e', 'f', 'g', 'h']);
  });

  it('layout - the machines checker refuses pg, pg-boss, pino, uWebSockets.js, node:*, bare built-ins and src/', () => {
    const bad = [
      "import pg from 'pg';",
      "import PgBoss from 'pg-boss';",
      "import { pino } from 'pino';",
      "import uWS from 'uWebSockets.js';",
      "import { setTimeout } from 'node:timers/promises';",
      "import { readFile } from 'fs';",
      "import type { Config } from '../src/config.js';",
      "import { x } from '../../src/http/routes.js';",
      "export { y } from '../test/support/kite.js';",
      "const z = await import('node:crypto');",
      "import { v } from 'xstate-but-not-really';",
    ];
    for (const line of bad) {
      expect(machineImportViolations('machines/peer-machine.ts', line), line).toHaveLength(1);
    }
    // Relative paths are resolved, so climbing out of machines/ from a subfolder counts too.
    expect(machineImportViolations('machines/peer/peer-machine.ts', "import type { Config } from '../../src/config.js';")).toHaveLength(1);
    expect(machineImportViolations('machines/peer/peer-machine.ts', "import { x } from '../../test/x.js';")).toHaveLength(1);
    const good = [
      "import { setup, fromPromise, assign } from 'xstate';",
      "import { SimulatedClock } from 'xstate/dev';",
      "import { backoffDelay } from './backoff.js';",
      "import type { Outcome } from '../outcome.js';",
    ].join('\n');
    expect(machineImportViolations('machines/peer/peer-machine.ts', good)).toEqual([]);
  });

  it('layout - the uWebSockets.js checker allows src/http/ and bench/ only', () => {
    const source = "import uWS, { type TemplatedApp } from 'uWebSockets.js';";
    expect(uwsImportViolations('src/http/server.ts', source)).toEqual([]);
    expect(uwsImportViolations('src/http/sub/thing.ts', source)).toEqual([]);
    expect(uwsImportViolations('bench/servers/uws-baseline.ts', source)).toEqual([]);
    expect(uwsImportViolations('src/listen/broadcast-hub.ts', source)).toHaveLength(1);
    expect(uwsImportViolations('src/httpish/x.ts', source)).toHaveLength(1);
    expect(uwsImportViolations('machines/peer.ts', "import type { WebSocket } from 'uWebSockets.js';")).toHaveLength(1);
    expect(uwsImportViolations('src/main.ts', "const u = await import('uWebSockets.js');")).toHaveLength(1);
    expect(uwsImportViolations('src/main.ts', "import http from 'node:http';")).toEqual([]);
  });

  it('layout - the test-import checker catches relative paths into test/', () => {
    expect(testImportViolations('src/main.ts', "import { x } from '../test/support/kite.js';")).toHaveLength(1);
    expect(testImportViolations('src/a/b.ts', "import { x } from '../../test/x.js';")).toHaveLength(1);
    expect(testImportViolations('machines/m.ts', "import { x } from '../test/x.js';")).toHaveLength(1);
    expect(testImportViolations('src/a/b.ts', "import { x } from '../testing/x.js';")).toEqual([]);
    expect(testImportViolations('src/a/b.ts', "import { x } from './test-helpers.js';")).toEqual([]);
  });

  it('layout - the env checker finds every way of reading process.env, and ignores comments and strings', () => {
    expect(envReads('src/x.ts', 'const port = process.env.KITE_PORT;')).toHaveLength(1);
    expect(envReads('src/x.ts', "const port = process.env['KITE_PORT'];")).toHaveLength(1);
    expect(envReads('src/x.ts', "const e = process['env'];")).toHaveLength(1);
    expect(envReads('src/x.ts', 'const e = globalThis.process.env;')).toHaveLength(1);
    expect(envReads('src/x.ts', 'const { env } = process;')).toHaveLength(1);
    expect(envReads('src/x.ts', 'const { env: e } = process;')).toHaveLength(1);
    expect(envReads('src/x.ts', "import { env } from 'node:process';")).toHaveLength(1);
    expect(envReads('src/x.ts', "import { env as e } from 'process';")).toHaveLength(1);
    expect(envReads('src/x.ts', '// reads process.env elsewhere\nconst s = "process.env";\nprocess.exitCode = 1;')).toEqual([]);
  });
});

describe('layout - the repository', () => {
  it('layout - src/ has code to check (the walker is not looking in the wrong place)', () => {
    const files = codeFiles('src');
    expect(files).toContain('src/main.ts');
    expect(files).toContain('src/config.ts');
    expect(files.some((f) => f.startsWith('src/http/'))).toBe(true);
  });

  it('layout - machines/ imports only xstate and its own files', () => {
    const violations = codeFiles('machines').flatMap((file) => machineImportViolations(file, read(file)));
    expect(violations).toEqual([]);
  });

  it('layout - only src/http/ imports uWebSockets.js (bench/ may)', () => {
    const files = projectCodeFiles();
    expect(files).toContain('src/main.ts');
    const violations = files.flatMap((file) => uwsImportViolations(file, read(file)));
    expect(violations).toEqual([]);
    // And src/http/ really is where it is used, so the rule is not vacuous.
    expect(codeFiles('src/http').some((file) => importSpecifiers(read(file)).includes('uWebSockets.js'))).toBe(true);
  });

  it('layout - only src/config.ts reads process.env in src/', () => {
    const reads = codeFiles('src').filter((f) => f !== 'src/config.ts').flatMap((file) => envReads(file, read(file)));
    expect(reads).toEqual([]);
    // config.ts is the one reader: the checker sees it there.
    expect(envReads('src/config.ts', read('src/config.ts')).length).toBeGreaterThan(0);
  });

  it('layout - machines/ reads no process.env either', () => {
    const reads = codeFiles('machines').flatMap((file) => envReads(file, read(file)));
    expect(reads).toEqual([]);
  });

  it('layout - nothing in src/ or machines/ imports from test/', () => {
    const violations = [...codeFiles('src'), ...codeFiles('machines')].flatMap((file) => testImportViolations(file, read(file)));
    expect(violations).toEqual([]);
  });
});
