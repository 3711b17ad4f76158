import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertFreshBuild, cleanEnv, runKite, startFakeKite, tempDir, type FakeKite } from './helpers.js';

assertFreshBuild();

const LEAF_COMMANDS = [
  ['serve'],
  ['migrate'],
  ['teams', 'create'],
  ['keys', 'create'],
  ['keys', 'list'],
  ['keys', 'revoke'],
  ['sources', 'add'],
  ['sources', 'list'],
  ['sources', 'rm'],
  ['listen'],
  ['publish'],
  ['peers', 'add'],
  ['peers', 'list'],
  ['peers', 'show'],
  ['peers', 'pause'],
  ['peers', 'resume'],
  ['peers', 'rm'],
  ['peers', 'redrive'],
  ['peers', 'deliveries'],
  ['bench'],
];

describe('cli help', () => {
  it.each(LEAF_COMMANDS.map((c) => [c.join(' '), c]))(
    'cli - kite %s --help prints usage, flags, environment and an example, exits 0 and starts nothing',
    async (_name, words) => {
      const dir = tempDir();
      const env = cleanEnv(dir, { KITE_PORT: '0' });
      const r = await runKite([...words, '--help'], { cwd: dir, env });
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain(`kite ${words.join(' ')} — `);
      for (const heading of ['Usage:', 'Flags:', 'Environment:', 'Example']) expect(r.stdout).toContain(heading);
      expect(r.stdout).toContain('--help');
      // Nothing started: serve/migrate would create the embedded Postgres under the data dir.
      expect(existsSync(env['KITE_DATA_DIR']!)).toBe(false);
      // `kite help <command>` is the same page.
      const viaHelp = await runKite(['help', ...words], { cwd: dir, env });
      expect(viaHelp).toEqual(r);
    },
  );

  it('cli - kite --help, -h and help list every command and exit 0', async () => {
    const dir = tempDir();
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = await runKite(args, { cwd: dir, env: cleanEnv(dir) });
      expect(r.code).toBe(0);
      for (const name of ['serve', 'migrate', 'teams', 'keys', 'sources', 'listen', 'publish', 'peers', 'bench']) {
        expect(r.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
      }
      expect(r.stdout).toContain('Example:');
    }
  });

  it.each([['teams'], ['keys'], ['sources'], ['peers']])('cli - kite %s --help lists its subcommands', async (group) => {
    const dir = tempDir();
    const r = await runKite([group, '--help'], { cwd: dir, env: cleanEnv(dir) });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`kite ${group} <`);
    expect(r.stdout).toContain('Example:');
  });

  it('cli - help wins over a bad flag next to it', async () => {
    const dir = tempDir();
    const r = await runKite(['keys', 'create', '--bogus', '--help'], { cwd: dir, env: cleanEnv(dir) });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('kite keys create');
  });

  it('cli - no command is announced as not yet available any more', async () => {
    const dir = tempDir();
    const r = await runKite(['--help'], { cwd: dir, env: cleanEnv(dir) });
    expect(r.stdout).not.toContain('not yet available');
    for (const group of ['peers', 'bench']) {
      const page = await runKite([group, '--help'], { cwd: dir, env: cleanEnv(dir) });
      expect([page.code, page.stdout.includes('not yet available')]).toEqual([0, false]);
    }
  });
});

describe('cli usage errors', () => {
  let fake: FakeKite;
  beforeAll(async () => {
    fake = await startFakeKite();
    fake.answer = () => ({ status: 201, body: {} });
  });
  afterAll(() => fake.close());

  const oneLineWithHint = (stderr: string, hint: string) => {
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^kite: /);
    expect(stderr).toContain(`Run '${hint}' for usage.`);
  };

  it.each([
    [[], 'missing command', 'kite --help'],
    [['frobnicate'], "unknown command 'frobnicate'", 'kite --help'],
    [['--verbose'], "unknown flag '--verbose'", 'kite --help'],
    [['keys'], 'missing subcommand', 'kite keys --help'],
    [['keys', 'delete'], "unknown subcommand 'delete'", 'kite keys --help'],
    [['teams', 'create', 'acme', '--bogus'], "unknown flag '--bogus'", 'kite teams create --help'],
    [['listen', '--team', 'acme', '-x'], "unknown flag '-x'", 'kite listen --help'],
    [['serve', '--port', '9000'], "unknown flag '--port'", 'kite serve --help'],
  ])('cli - %j is refused with one line and exit 2', async (args, message, hint) => {
    const dir = tempDir();
    const r = await runKite(args, { cwd: dir, env: cleanEnv(dir) });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
    oneLineWithHint(r.stderr, hint);
  });

  it.each([
    [['teams', 'create'], 'missing argument <slug>'],
    [['teams', 'create', 'acme', 'extra'], "unexpected argument 'extra'"],
    [['teams', 'create', 'Acme Corp'], "team 'Acme Corp' is not a slug"],
    [['keys', 'create', '--team', 'acme', '--name', 'ci'], 'missing required flag --role'],
    [['keys', 'create', '--team', 'acme', '--name', 'ci', '--role', 'root'], '--role must be one of admin, agent'],
    [['keys', 'revoke', '--team', 'acme'], 'missing argument <id>'],
    [['keys', 'list'], 'missing required flag --team'],
    [['sources', 'add', '--team', 'acme', '--name', 's', '--provider', 'paypal', '--secret', 'x'], '--provider must be one of stripe, github, standard, cloudevents'],
    [['sources', 'add', '--team', 'acme', '--name', 's', '--provider', 'stripe'], 'missing required flag --secret'],
    [['listen', '--team', 'acme', '--after', 'abc'], '--after must be a whole number'],
    [['listen', '--team', 'acme', '--after'], '--after needs a value'],
    [['publish', '--team', 'acme', '--type', 'com.x', '--data', '{"a":'], '--data is not valid JSON'],
    [['publish', '--team', 'acme', '--type', 'com.x', '--data', '1', '--data-file', 'f'], 'either --data or --data-file'],
    [['publish', '--team', 'acme', '--data', '{}'], 'missing required flag --type'],
  ])('cli - %j is refused before anything is sent, exit 2', async (args, message) => {
    const dir = tempDir();
    const before = fake.requests.length + fake.upgrades.length;
    const r = await runKite([...args, '--url', fake.url, '--token', 'test-token'], { cwd: dir, env: cleanEnv(dir) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    const command = ['keys', 'sources', 'teams'].includes(args[0]!) ? args.slice(0, 2).join(' ') : args[0];
    oneLineWithHint(r.stderr, `kite ${command} --help`);
    expect(fake.requests.length + fake.upgrades.length).toBe(before);
  });

  it('cli - invalid JSON in --data-file fails with exit 1 and sends nothing', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'data.json');
    writeFileSync(file, '{"total": 4');
    const before = fake.requests.length;
    const r = await runKite(['publish', '--team', 'acme', '--type', 'com.x', '--data-file', file, '--url', fake.url, '--token', 't'], {
      cwd: dir,
      env: cleanEnv(dir),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--data-file ${file} is not valid JSON`);
    expect(fake.requests.length).toBe(before);
  });

  it.each([['serve'], ['migrate']])('cli - kite %s stops on bad configuration with one line naming the variable, exit 1', async (command) => {
    const dir = tempDir();
    const env = cleanEnv(dir, { KITE_PORT: 'eighty' });
    const r = await runKite([command], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^kite: Invalid configuration: KITE_PORT: /);
    expect(existsSync(env['KITE_DATA_DIR']!)).toBe(false);
  });
});
