/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, see `--profile`): self time by category
 * (Kite's own code, each npm package, Node internals, GC, native), the top functions by self time,
 * and Kite's own functions by self and total (inclusive) time, with their source file.
 * `node dist/bench/run.js profile bench/results/<file>.cpuprofile [--top N]`
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface FunctionTime {
  readonly key: string;
  readonly category: string;
  self: number;
  total: number;
}

/** Where a frame's code lives: `kite` (dist/src, reported as src/*.ts), an npm package, node internals, or a V8 pseudo-frame. */
export function categorize(url: string, functionName: string): { category: string; file: string } {
  if (!url) return { category: functionName.startsWith('(') ? functionName : '(native)', file: '' };
  const kite = url.match(/\/dist\/(src\/.*)\.js$/);
  if (kite) return { category: 'kite', file: `${kite[1]}.ts` };
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (pkg) return { category: pkg[1]!, file: url.slice(url.lastIndexOf('node_modules/') + 13) };
  if (url.startsWith('node:')) return { category: 'node internals', file: url };
  return { category: 'other', file: path.basename(url) };
}

export function analyze(profile: CpuProfile): { totalHits: number; idleHits: number; functions: FunctionTime[]; categories: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const functions = new Map<string, FunctionTime>();
  const categories = new Map<string, number>();
  let totalHits = 0;
  let idleHits = 0;
  const keyOf = (node: ProfileNode) => {
    const { category, file } = categorize(node.callFrame.url, node.callFrame.functionName);
    const name = node.callFrame.functionName || '(anonymous)';
    return { key: file ? `${file}:${name}:${node.callFrame.lineNumber + 1}` : name, category };
  };
  // Depth-first, with the set of functions on the stack, so recursion is not counted twice in totals.
  const visit = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id)!;
    const { key, category } = keyOf(node);
    const self = node.hitCount ?? 0;
    totalHits += self;
    if (key === '(idle)') idleHits += self;
    categories.set(category, (categories.get(category) ?? 0) + self);
    const fresh = !onStack.has(key);
    if (fresh) onStack.add(key);
    let total = self;
    for (const child of node.children ?? []) total += visit(child, onStack);
    if (fresh) onStack.delete(key);
    const entry = functions.get(key) ?? { key, category, self: 0, total: 0 };
    entry.self += self;
    if (fresh) entry.total += total;
    functions.set(key, entry);
    return total;
  };
  const childIds = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  for (const node of profile.nodes) if (!childIds.has(node.id)) visit(node.id, new Set());
  return { totalHits, idleHits, functions: [...functions.values()], categories };
}

export function printProfile(args: readonly string[]): number {
  const file = args.find((a) => !a.startsWith('--'));
  const topIndex = args.indexOf('--top');
  const top = topIndex >= 0 ? Number(args[topIndex + 1]) || 20 : 20;
  if (!file) {
    console.error('usage: node dist/bench/run.js profile <file.cpuprofile> [--top N]');
    return 2;
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const { totalHits, idleHits, functions, categories } = analyze(profile);
  const busy = Math.max(1, totalHits - idleHits);
  const pct = (hits: number) => `${((hits / busy) * 100).toFixed(1).padStart(5)}%`;
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  console.log(`${file}: ${seconds.toFixed(1)} s wall, ${((busy / totalHits) * 100).toFixed(0)}% busy; percentages are of busy (non-idle) samples`);
  console.log('\nSelf time by where the code lives:');
  for (const [category, hits] of [...categories].filter(([c]) => c !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`  ${pct(hits)}  ${category}`);
  }
  const list = (title: string, xs: FunctionTime[], field: 'self' | 'total') => {
    console.log(`\n${title}:`);
    for (const f of xs.sort((a, b) => b[field] - a[field]).slice(0, top)) {
      console.log(`  ${pct(f[field])} ${field === 'total' ? 'total' : 'self '}  ${f.key}${f.category === 'kite' ? '' : `  [${f.category}]`}`);
    }
  };
  list('Top functions by self time', functions.filter((f) => f.key !== '(idle)'), 'self');
  const kite = functions.filter((f) => f.category === 'kite');
  list("Kite's own functions by self time", [...kite], 'self');
  list("Kite's own functions by total time (self + callees)", [...kite], 'total');
  return 0;
}
