/**
 * `kite peers add|list|show|pause|resume|rm|redrive|deliveries` (and `invite|accept`): a team's
 * federation peers (contract §5, §6). This file is the subcommand table; each command lives in
 * the peers-*.ts file named after what it does, its flags checked in peers-flags.ts.
 */
import type { CommandGroup } from '../command.js';
import { add } from './peers-add.js';
import { redrive, rm, setEnabled } from './peers-change.js';
import { pairingCommands } from './peers-invite.js';
import { deliveries, list, show } from './peers-show.js';

export const peers: CommandGroup = {
  name: 'peers',
  summary: 'federate with other Kite instances: pair, pause, redrive, see deliveries',
  subcommands: { add, ...pairingCommands, list, show, pause: setEnabled(false), resume: setEnabled(true), rm, redrive, deliveries },
};
