/**
 * Preloaded into every Kite node the chaos harness starts (`node --import …/orphan-guard.js`):
 * the harness itself may die (a test timeout, Ctrl-C, a kill), and a node it leaves behind would
 * hold its port and database. The node is spawned with an IPC channel; when the parent goes away
 * the channel closes and the node dies at once, like the kill -9 it was built to survive.
 */
if (process.channel) {
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  // The channel must not keep an otherwise finished process alive.
  process.channel.unref();
}
