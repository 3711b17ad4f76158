/**
 * `kite listen`: print a team's events, one compact JSON CloudEvent per line, and remember where
 * it stopped. Stdout carries events only (status lines go to stderr), so it pipes into jq or a
 * script. The cursor advances only once a line has been handed to the OS, and on SIGINT/SIGTERM
 * the pending lines get a moment to drain before the cursor is flushed: whatever did not make it
 * out is not in the cursor, so the next start prints it again (at-least-once, never a gap).
 */
import path from 'node:path';
import { CLIENT_ENV, CLIENT_FLAGS, TEAM_FLAG, resolveClient } from '../api-client.js';
import { booleanFlag, listFlag, requiredString, seqFlag, slug, stringFlag, type Parsed } from '../args.js';
import type { Command } from '../command.js';
import { CursorStore } from '../cursor-store.js';
import { takeOverShutdownSignals } from '../signals.js';

const DRAIN_ON_EXIT_MS = 2000;

export const listen: Command = {
  spec: {
    command: 'listen',
    summary: "print a team's events as JSON lines, resuming where it stopped",
    usage: 'kite listen --team <team> [--types <patterns>] [--after <seq>] [--cursor-file <file>] [--quiet]',
    details: [
      'Prints one CloudEvent per line on stdout; status goes to stderr. Patterns are comma-separated;',
      "'*' matches anything, and 'stripe.*' matches com.stripe.* too. The seq of the last event printed",
      'is saved to the cursor file (at most every 0.2 s, and on exit); the next start resumes after it',
      'unless --after is given. After a crash or kill -9, the events of that last 0.2 s may print again',
      '(at least once, never skipped): dedupe by the event id if that matters. Without a cursor',
      'or --after, only new events are printed. Dropped connections are retried (0.5 s doubling to 30 s);',
      'a revoked key or a refused team ends the command with exit code 1.',
      'Listeners of the same team with different --types should each have their own --cursor-file.',
    ],
    flags: {
      ...TEAM_FLAG,
      types: { type: 'string', value: '<patterns>', multiple: true, description: 'event types to print, e.g. stripe.*,com.kite.agent.message (default *)' },
      after: { type: 'string', value: '<seq>', description: 'print events after this seq (0: from the start), ignoring the saved cursor' },
      'cursor-file': { type: 'string', value: '<file>', description: 'where to keep the cursor (default <KITE_DATA_DIR>/cursors/<team>.cursor)' },
      quiet: { type: 'boolean', short: 'q', description: 'no status lines on stderr, only errors' },
      ...CLIENT_FLAGS,
    },
    env: CLIENT_ENV,
    examples: [
      "kite listen --team acme --types 'stripe.*' | jq -r .type",
      'kite listen --team acme --after 0 --cursor-file ./replay.cursor',
    ],
  },
  async run(p: Parsed) {
    const team = slug(p, 'team', requiredString(p, 'team'));
    const types = listFlag(p, 'types').join(',') || undefined;
    const after = seqFlag(p, 'after');
    const client = await resolveClient(p);
    const cursorFile = stringFlag(p, 'cursor-file') ?? path.join(client.dataDir, 'cursors', `${team}.cursor`);
    const status = booleanFlag(p, 'quiet') ? () => {} : (m: string) => void process.stderr.write(`kite listen: ${m}\n`);

    const cursor = new CursorStore(cursorFile, (err) => finish(1, err.message));
    const start = after ?? (await cursor.load());

    const { ListenSession } = await import('../listen-session.js'); // ws is slow to load; help need not
    let pendingWrites = 0;
    let waitingForDrain = false;
    const session = new ListenSession({
      url: client.url,
      token: client.token,
      team,
      ...(types ? { types } : {}),
      ...(start !== undefined ? { after: start } : {}),
      onStatus: status,
      onReady: (head) => {
        status(`listening to team ${team} (head ${head})`);
        // Nothing saved yet: remember the head, so a restart does not skip what arrives meanwhile.
        if (cursor.position === undefined) cursor.advance(head);
      },
      onEvent: (seq, event) => {
        pendingWrites++;
        const flowing = process.stdout.write(`${JSON.stringify(event)}\n`, (err) => {
          pendingWrites--;
          if (!err) cursor.advance(seq);
        });
        if (!flowing && !waitingForDrain) {
          // Slow consumer: stop reading the socket until stdout drains, so memory stays bounded.
          waitingForDrain = true;
          session.pause();
          process.stdout.once('drain', () => {
            waitingForDrain = false;
            session.resume();
          });
        }
      },
    });

    let finishing = false;
    /** The one way out: stop reading, let printed lines drain, save the cursor, exit. */
    function finish(code: number, message?: string): void {
      if (finishing) return;
      finishing = true;
      void (async () => {
        if (message) process.stderr.write(`kite: ${message}\n`);
        await session.stop();
        await waitUntil(() => pendingWrites === 0, DRAIN_ON_EXIT_MS);
        try {
          await cursor.flush();
        } catch (err) {
          if (code === 0) process.stderr.write(`kite: cannot save cursor to ${cursorFile}: ${(err as Error).message}\n`);
          code = 1;
        }
        // Exit now: lines still stuck in a blocked pipe are not in the cursor, so they are not lost.
        process.exit(code);
      })();
    }

    const onSignal = () => {
      if (finishing) {
        try {
          cursor.flushSync();
        } finally {
          process.exit(1);
        }
      }
      finish(0);
    };
    takeOverShutdownSignals(onSignal);
    // The reader went away (`| head -n 3`): stop quietly; the cursor covers what it did read.
    process.stdout.on('error', () => finish(0));

    status(`connecting to ${session.listenUrl()}`);
    await session.run().catch((err: Error) => finish(1, err.message));
    return new Promise<number>(() => {}); // finish() exits the process
  },
};

function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const check = () => (done() || Date.now() >= deadline ? resolve() : setTimeout(check, 10));
    check();
  });
}
