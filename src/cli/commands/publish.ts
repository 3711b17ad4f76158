/**
 * `kite publish`: send one structured CloudEvent to a team, as an agent does (contract §3 Events).
 * Kite sets `source` (from the key's name) and fills `id` and `time` when absent, so the CLI sends
 * neither `source` nor `time`. The data is parsed here first: a JSON typo fails before anything
 * is sent, instead of publishing a string nobody meant.
 */
import { readFile } from 'node:fs/promises';
import { CLIENT_ENV, CLIENT_FLAGS, TEAM_FLAG, apiRequest, resolveClient, teamPath } from '../api-client.js';
import { CliError, UsageError, requiredString, slug, stringFlag, type Parsed } from '../args.js';
import type { Command } from '../command.js';

export const publish: Command = {
  spec: {
    command: 'publish',
    summary: 'publish a CloudEvent to a team',
    usage: 'kite publish --team <team> --type <type> [--data <json> | --data-file <file> | < data.json] [--id <id>] [--subject <s>]',
    details: [
      'The data is JSON: from --data, from --data-file (- for stdin), or piped on stdin.',
      'Without any of them (and with stdin a terminal) the event has no data.',
      'Prints {"id","seq","duplicate"}; re-sending the same --id answers duplicate: true.',
      "Types starting with 'kite.' are reserved.",
    ],
    flags: {
      ...TEAM_FLAG,
      type: { type: 'string', value: '<type>', description: 'the CloudEvent type, e.g. com.kite.agent.message', required: true },
      data: { type: 'string', value: '<json>', description: 'the event data as JSON' },
      'data-file': { type: 'string', value: '<file>', description: 'read the data (JSON) from a file; - for stdin' },
      id: { type: 'string', value: '<id>', description: 'event id, for idempotent retries (default: Kite picks one)' },
      subject: { type: 'string', value: '<subject>', description: 'the CloudEvent subject' },
      ...CLIENT_FLAGS,
    },
    env: CLIENT_ENV,
    examples: [
      `kite publish --team acme --type com.kite.agent.message --data '{"to":"https://kite.example.com/agents/bob","payload":"hi"}'`,
      'echo \'{"total": 42}\' | kite publish --team acme --type com.acme.order.created --id order-42',
    ],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const type = requiredString(p, 'type');
    const id = stringFlag(p, 'id');
    const subject = stringFlag(p, 'subject');
    if (id === '') throw new UsageError('--id must not be empty', p.spec.command);
    const data = await readData(p);
    const event: Record<string, unknown> = { specversion: '1.0', type };
    if (id !== undefined) event['id'] = id;
    if (subject !== undefined) event['subject'] = subject;
    if (data !== undefined) {
      event['datacontenttype'] = 'application/json';
      event['data'] = data.value;
    }
    const client = await resolveClient(p);
    const answer = await apiRequest(client, 'POST', teamPath(team, 'events'), {
      body: event,
      contentType: 'application/cloudevents+json',
    });
    process.stdout.write(`${JSON.stringify(answer)}\n`);
    return 0;
  },
};

/** Wrapped so that JSON `null` (valid data) differs from "no data at all". */
async function readData(p: Parsed): Promise<{ value: unknown } | undefined> {
  const inline = stringFlag(p, 'data');
  const file = stringFlag(p, 'data-file');
  if (inline !== undefined && file !== undefined) throw new UsageError('give either --data or --data-file, not both', p.spec.command);
  if (inline !== undefined) {
    // A typo on the command line is a usage error (exit 2), like any other bad flag value.
    return { value: parseJson(inline, '--data', (m) => new UsageError(m, p.spec.command)) };
  }
  let text: string;
  let origin: string;
  if (file !== undefined && file !== '-') {
    origin = `--data-file ${file}`;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${origin}: ${(err as Error).message}`);
    }
  } else if (file === '-' || !process.stdin.isTTY) {
    origin = 'stdin';
    text = await readStdin();
    // `kite publish … < /dev/null` in a script means "no data", not "invalid JSON".
    if (file === undefined && text.trim() === '') return undefined;
  } else {
    return undefined;
  }
  return { value: parseJson(text, origin, (m) => new CliError(m)) };
}

function parseJson(text: string, origin: string, fail: (message: string) => Error): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw fail(`${origin} is not valid JSON (${(err as Error).message}); nothing was sent`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
