/**
 * `kite peers add`: registers a peer and prints the command that completes the pairing on it.
 *
 * A relationship is registered on both instances with a pair of keys, our outbound key being
 * their inbound key and the other way round. So `add` prints the peer (with both keys, which
 * Kite shows only in this answer) on stdout, and on stderr the one command to run on the other
 * instance to complete the pairing, keys swapped. That command holds both secrets; it says so.
 */
import { CLIENT_ENV, KITE_URL_FLAG, TEAM_FLAG, apiRequest, printJson, resolveClient, teamPath, type Client } from '../api-client.js';
import { CliError, requiredString, slug, type Parsed } from '../args.js';
import type { Command } from '../command.js';
import { SETTINGS_FLAGS, newPeerBody } from './peers-flags.js';

// ── the pairing command ────────────────────────────────────────────────────────────────────

/** POSIX shell quoting: bare when only safe characters, else single quotes. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface Instance {
  readonly instanceId: string;
  readonly publicUrl: string;
}

interface CreatedPeer {
  readonly instanceId?: unknown;
  readonly remoteTeam?: unknown;
  readonly scopes?: unknown;
  readonly outboundKey?: unknown;
  readonly inboundKey?: unknown;
}

/** What the other instance runs: its team is our remoteTeam, its remote team is ours, keys swapped. */
export function pairingCommand(team: string, self: Instance, created: CreatedPeer): string {
  const { remoteTeam, scopes, outboundKey, inboundKey } = created;
  if (
    typeof remoteTeam !== 'string' ||
    !Array.isArray(scopes) ||
    !scopes.every((s): s is string => typeof s === 'string') ||
    typeof outboundKey !== 'string' ||
    typeof inboundKey !== 'string'
  ) {
    throw new CliError('Kite created the peer but its answer lacks remoteTeam, scopes or the keys; cannot print the pairing command');
  }
  const args = ['kite', 'peers', 'add', '--team', remoteTeam, '--instance-id', self.instanceId, '--url', self.publicUrl];
  // On the other side, the remote team is this team; the default (its own slug) is only right when they match.
  if (remoteTeam !== team) args.push('--remote-team', team);
  args.push('--scopes', scopes.join(','), '--outbound-key', inboundKey, '--inbound-key', outboundKey);
  return args.map(shellQuote).join(' ');
}

/** The Kite the command talks to, as the other side must name it (`peers invite` asks it too). */
export async function thisInstance(client: Client): Promise<Instance> {
  const answer = await apiRequest<{ instanceId?: unknown; publicUrl?: unknown }>(client, 'GET', '/v1/instance');
  if (typeof answer?.instanceId !== 'string' || typeof answer.publicUrl !== 'string') {
    throw new CliError(`GET ${client.url}/v1/instance did not answer {"instanceId", "publicUrl"}; is ${client.url} a Kite?`);
  }
  return { instanceId: answer.instanceId, publicUrl: answer.publicUrl };
}

// ── the command ────────────────────────────────────────────────────────────────────────────

export const add: Command = {
  spec: {
    command: 'peers add',
    summary: 'register a peer instance and print the command that completes the pairing on it',
    usage:
      'kite peers add --team <team> --instance-id <id> --url <https://…> --scopes <patterns> [--remote-team <team>] [settings] [--outbound-key <k>] [--inbound-key <k>]',
    details: [
      "Prints the peer as JSON, with outboundKey and inboundKey: Kite shows the keys only this once.",
      'Then prints on stderr the command to run on the other instance (with KITE_URL and KITE_TOKEN',
      "set for it) to register this instance there, keys swapped. That command contains both secret",
      'keys: pass it on privately.',
      'Settings not given take the server defaults: --max-hops 3, --rate-limit 100/200,',
      '--inbound-rate-limit 1000/2000, --max-attempts 20, --initial-delay-ms 1000,',
      '--max-delay-ms 300000, --timeout-ms 10000; both keys are generated when not given.',
      "Here --url is the peer's URL; the Kite to send the request to is --kite-url or KITE_URL.",
    ],
    flags: {
      ...TEAM_FLAG,
      'instance-id': { type: 'string', value: '<id>', description: "the peer's instance ID (its KITE_INSTANCE_ID)", required: true },
      url: { type: 'string', value: '<https://…>', description: "the peer's public URL; https:// only", required: true },
      scopes: {
        type: 'string',
        value: '<patterns>',
        description: "event types to forward, comma-separated, e.g. 'stripe.*,github.*'",
        multiple: true,
        required: true,
      },
      'remote-team': { type: 'string', value: '<team>', description: "the team on the peer's side (default: the same slug as --team)" },
      ...SETTINGS_FLAGS,
      'outbound-key': { type: 'string', value: '<whsec_…>', description: 'key to sign deliveries to the peer with (default: generated)' },
      'inbound-key': { type: 'string', value: '<whsec_…>', description: "key the peer's deliveries must be signed with (default: generated)" },
      ...KITE_URL_FLAG,
    },
    env: CLIENT_ENV,
    examples: [
      "kite peers add --team acme --instance-id kite-b --url https://b.kite.example.com --scopes 'stripe.*,github.*'",
      "kite peers add --team acme --instance-id kite-b --url https://b.kite.example.com --remote-team acme-eu --scopes '*' --max-hops 2 --rate-limit 50/100",
    ],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const body = newPeerBody(p);
    const client = await resolveClient(p, 'kite-url');
    // Asked first: if this fails nothing has been created, and the pairing command needs it.
    const self = await thisInstance(client);
    const created = await apiRequest<CreatedPeer>(client, 'POST', teamPath(team, 'peers'), { body });
    printJson(created);
    const command = pairingCommand(team, self, created);
    const other = typeof created.instanceId === 'string' ? created.instanceId : 'the other instance';
    // Both keys given: most likely the second half, the command `add` printed on the other side,
    // and then there is nothing to run back there (it would only earn a 409). Keys chosen by hand
    // on the first side give both too, so the command still follows, said as the exception.
    const secondHalf = body['outboundKey'] !== undefined && body['inboundKey'] !== undefined;
    const lines = [
      '',
      ...(secondHalf
        ? [
          `Both keys were given: if this ran the command that 'kite peers add' printed on ${other}, the pairing is complete.`,
          `Otherwise, to complete it, run this against ${other} (KITE_URL and KITE_TOKEN set for it, or add --kite-url and --token).`,
        ]
        : [
          'The keys above are shown only this once: Kite keeps no way to print them again.',
          `To complete the pairing, run this against ${other} (KITE_URL and KITE_TOKEN set for it, or add --kite-url and --token).`,
        ]),
      'It contains both secret keys of the pair: pass it on privately, and keep it out of chats, tickets and shell history.',
      '',
      `  ${command}`,
      '',
    ];
    if (!/^https:\/\//i.test(self.publicUrl)) {
      lines.push(
        `Warning: this instance's public URL ${self.publicUrl} is not https://, so ${other} will refuse it;`,
        "set KITE_PUBLIC_URL to this instance's https:// URL and use that for --url.",
        '',
      );
    }
    process.stderr.write(lines.join('\n'));
    return 0;
  },
};
