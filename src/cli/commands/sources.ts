/**
 * `kite sources add|list|rm`: a team's webhook entry points. `add` prints only the ingest URL, the
 * one thing a user pastes into Stripe's or GitHub's webhook settings next.
 */
import { readFile } from 'node:fs/promises';
import { CLIENT_ENV, CLIENT_FLAGS, TEAM_FLAG, apiRequest, printJson, resolveClient, teamPath } from '../api-client.js';
import { CliError, UsageError, oneOf, requiredString, slug, stringFlag, type Parsed } from '../args.js';
import type { Command, CommandGroup } from '../command.js';

const PROVIDERS = ['stripe', 'github', 'standard', 'cloudevents'] as const;

const add: Command = {
  spec: {
    command: 'sources add',
    summary: 'add a webhook source and print its ingest URL',
    usage: 'kite sources add --team <team> --name <name> --provider <provider> (--secret <s> | --secret-file <f>)',
    details: [
      'Providers: stripe (Stripe-Signature), github (X-Hub-Signature-256),',
      'standard (Standard Webhooks, secret whsec_…), cloudevents (CloudEvents signed as standard).',
      "The name 'kite' is reserved for federation.",
    ],
    flags: {
      ...TEAM_FLAG,
      name: { type: 'string', value: '<name>', description: 'source name (a slug); part of the ingest URL', required: true },
      provider: { type: 'string', value: '<provider>', description: PROVIDERS.join('|'), required: true },
      secret: { type: 'string', value: '<secret>', description: "the provider's signing secret" },
      'secret-file': { type: 'string', value: '<file>', description: 'read the secret from a file, keeping it out of shell history' },
      ...CLIENT_FLAGS,
    },
    env: CLIENT_ENV,
    examples: [
      'kite sources add --team acme --name stripe --provider stripe --secret whsec_abc123',
      'kite sources add --team acme --name gh --provider github --secret-file ./github-secret',
    ],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const name = slug(p, 'source name', requiredString(p, 'name'));
    const provider = oneOf(p, 'provider', requiredString(p, 'provider'), PROVIDERS);
    const secret = await readSecret(p);
    const client = await resolveClient(p);
    const created = await apiRequest<{ url?: unknown }>(client, 'POST', teamPath(team, 'sources'), { body: { name, provider, secret } });
    if (typeof created?.url !== 'string') throw new CliError('Kite created the source but did not answer its URL');
    process.stdout.write(`${created.url}\n`);
    return 0;
  },
};

async function readSecret(p: Parsed): Promise<string> {
  const inline = stringFlag(p, 'secret');
  const file = stringFlag(p, 'secret-file');
  if (inline !== undefined && file !== undefined) throw new UsageError('give either --secret or --secret-file, not both', p.spec.command);
  if (file !== undefined) {
    let secret: string;
    try {
      secret = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new CliError(`cannot read --secret-file ${file}: ${(err as Error).message}`);
    }
    if (!secret) throw new CliError(`--secret-file ${file} is empty`);
    return secret;
  }
  if (inline === undefined || inline === '') throw new UsageError('missing required flag --secret <secret> (or --secret-file <file>)', p.spec.command);
  return inline;
}

const list: Command = {
  spec: {
    command: 'sources list',
    summary: "list a team's sources",
    usage: 'kite sources list --team <team> [--url <url>] [--token <token>]',
    flags: { ...TEAM_FLAG, ...CLIENT_FLAGS },
    env: CLIENT_ENV,
    examples: ['kite sources list --team acme'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const client = await resolveClient(p);
    printJson(await apiRequest(client, 'GET', teamPath(team, 'sources')));
    return 0;
  },
};

const rm: Command = {
  spec: {
    command: 'sources rm',
    summary: 'remove a source; its ingest URL stops accepting webhooks',
    usage: 'kite sources rm --team <team> <name> [--url <url>] [--token <token>]',
    positionals: [{ name: 'name', description: 'the source name' }],
    flags: { ...TEAM_FLAG, ...CLIENT_FLAGS },
    env: CLIENT_ENV,
    examples: ['kite sources rm --team acme stripe'],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const name = slug(p, 'source name', p.positionals[0]!);
    const client = await resolveClient(p);
    await apiRequest(client, 'DELETE', teamPath(team, 'sources', name));
    process.stdout.write(`removed source ${name}\n`);
    return 0;
  },
};

export const sources: CommandGroup = {
  name: 'sources',
  summary: 'add, list and remove webhook sources',
  subcommands: { add, list, rm },
};
