/**
 * `kite bench <scenario> [flags]`: runs the benchmarks (bench/, compiled to dist/bench/ by
 * `npm run build`) as `node <package root>/dist/bench/run.js <scenario> [flags]`, with this
 * terminal's stdin, stdout and stderr, and exits with its exit code. Every flag after the
 * scenario belongs to run.js; only `--help` is looked at here.
 *
 * The help lists the scenarios by asking run.js itself (`run.js --help`), so it cannot drift from
 * what the build contains; without a build it falls back to a static list.
 *
 * Signals: Ctrl-C reaches the whole foreground process group, so the benchmark gets it directly
 * and stops its servers and drops its databases before exiting; kite only waits for it. A SIGTERM
 * sent to kite alone is passed on to the benchmark, which cleans up the same way.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, UsageError, type Parsed } from '../args.js';
import type { Command } from '../command.js';

/** Shown when run.js cannot tell (not built): keep in step with bench/run.ts. */
const STATIC_SCENARIOS = ['ingest', 'fanout', 'ceilings', 'federation', 'retry', 'backlog', 'isolation', 'idle-peers'] as const;

/** The package root: the nearest directory above this file whose package.json names `kite`. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'kite') return dir;
      } catch {
        // unreadable manifest: keep looking upwards
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // dist/src/cli/commands/bench.js → the root is four levels up.
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
}

function runJs(): string {
  return path.join(packageRoot(), 'dist', 'bench', 'run.js');
}

function notBuilt(file: string): string {
  return `the benchmarks are not built (${file} is missing): run 'npm run build' first`;
}

function staticHelp(reason: string): string {
  return [
    '',
    `Scenarios (${reason}):`,
    ...STATIC_SCENARIOS.map((s) => `  ${s}`),
    '  (more to come)',
    '',
  ].join('\n');
}

export const bench: Command = {
  spec: {
    command: 'bench',
    summary: 'run a benchmark scenario (ingest, fanout, …): starts its own Kite servers on this machine',
    usage: 'kite bench <scenario|all> [flags]',
    details: [
      'Runs node <package root>/dist/bench/run.js <scenario> [flags] in this terminal and exits with',
      "its exit code. The benchmarks are compiled by 'npm run build'. Every flag after the scenario",
      'goes to the benchmark; its scenarios and flags are listed below. Results are written to',
      'bench/results/. Ctrl-C stops the benchmark, which cleans up its servers first.',
    ],
    flags: {},
    passthrough: true,
    env: [['BENCH_DATABASE_URL', 'Postgres the benchmarks create their databases in (default postgres://postgres@127.0.0.1:5432/postgres)']],
    examples: ['kite bench ingest --quick', 'kite bench fanout --listeners 1,100 --duration 5'],
  },
  async moreHelp() {
    const file = runJs();
    if (!existsSync(file)) return staticHelp(`run 'npm run build' to build them and see their flags`);
    return new Promise<string>((resolve) => {
      execFile(process.execPath, [file, '--help'], { timeout: 10_000 }, (err, stdout) => {
        if (err || stdout.trim() === '') {
          resolve(staticHelp(`${path.relative(process.cwd(), file) || file} --help did not answer`));
          return;
        }
        const body = stdout.trimEnd().split('\n').map((line) => (line ? `  ${line}` : ''));
        resolve(['', 'From dist/bench/run.js --help:', ...body, ''].join('\n'));
      });
    });
  },
  async run(p: Parsed) {
    const args = [...p.positionals];
    const scenario = args[0];
    if (scenario === undefined || scenario === '') {
      throw new UsageError(`missing <scenario> (${STATIC_SCENARIOS.join(', ')}, all, …)`, 'bench');
    }
    if (scenario.startsWith('-')) throw new UsageError(`the scenario comes first (got the flag '${scenario}')`, 'bench');
    const file = runJs();
    if (!existsSync(file)) throw new CliError(notBuilt(file));
    return new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [file, ...args], { stdio: 'inherit' });
      const onInt = () => {
        // The terminal sent it to the benchmark too; wait for it to clean up and exit.
      };
      const onTerm = () => child.kill('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      const done = () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
      };
      child.on('error', (err) => {
        done();
        reject(new CliError(`cannot start the benchmark (${file}): ${err.message}`));
      });
      child.on('exit', (code, signal) => {
        done();
        if (code !== null) resolve(code);
        else resolve(128 + ((signal && constants.signals[signal]) || 1));
      });
    });
  },
};
