#!/usr/bin/env node
/**
 * Makes sure a Chromium is there for the browser test of the status page (test/ui/): Debian's
 * `chromium` package at /usr/bin/chromium (or KITE_CHROMIUM, when set). Run by `npm test`'s
 * pretest, so `npm install && npm test` works on a fresh machine and in CI.
 *
 * - present: says nothing and exits 0;
 * - missing, root on Debian/Ubuntu: `apt-get install -y chromium` (after `apt-get update` when the
 *   package is not known yet, or when installing from the known list fails), printing what it does
 *   and how long it took;
 * - missing otherwise: exits 1 with one line saying how to install it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const path = process.env.KITE_CHROMIUM || '/usr/bin/chromium';
if (existsSync(path)) process.exit(0);

const say = (line) => process.stderr.write(`ensure-chromium: ${line}\n`);
const fail = (line) => {
  say(line);
  process.exit(1);
};

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const osRelease = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
const isDebian = /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(osRelease) && existsSync('/usr/bin/apt-get');
const howTo = 'install it with `sudo apt-get install -y chromium` (Debian/Ubuntu), or set KITE_CHROMIUM to a Chromium binary';

if (process.env.KITE_CHROMIUM) fail(`KITE_CHROMIUM=${path} does not exist; ${howTo}.`);
if (!isDebian) fail(`${path} is missing and this is not Debian with apt-get; ${howTo}.`);
if (!isRoot) fail(`${path} is missing and we are not root; ${howTo}.`);

const started = Date.now();
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const apt = (...args) => {
  say(`running apt-get ${args.join(' ')}`);
  return spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
};
const mustApt = (...args) => {
  if (!apt(...args)) fail(`apt-get ${args.join(' ')} failed; ${howTo}.`);
};
const known = () => {
  try {
    return /Candidate: (?!\(none\))/.test(execFileSync('apt-cache', ['policy', 'chromium'], { encoding: 'utf8', env }));
  } catch {
    return false;
  }
};

say(`${path} is missing: installing Debian's chromium package`);
let updated = false;
if (!known()) {
  mustApt('update', '-q');
  updated = true;
}
const install = ['install', '-y', '-q', '--no-install-recommends', 'chromium'];
// A package list that is known but old may name a version the mirror no longer has: refresh once.
if (!apt(...install)) {
  if (updated) fail(`apt-get ${install.join(' ')} failed; ${howTo}.`);
  mustApt('update', '-q');
  mustApt(...install);
}
if (!existsSync(path)) fail(`apt-get installed chromium but ${path} is still missing; ${howTo}.`);
say(`installed ${execFileSync(path, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
