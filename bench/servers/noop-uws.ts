/**
 * Ceiling for ingest: a uWebSockets.js POST handler that reads the whole body and answers 200 `{}`.
 * No verification, no parsing, no database — what this machine's HTTP path costs with the same load generator.
 */
import uWS from 'uWebSockets.js';
import { exitOnSignal, PORT } from './common.js';

const app = uWS.App();
app.get('/ready', (res) => void res.end('ok'));
app.post('/*', (res) => {
  let aborted = false;
  const parts: Buffer[] = [];
  res.onAborted(() => (aborted = true));
  res.onData((chunk, isLast) => {
    parts.push(Buffer.from(chunk.slice(0))); // the chunk is only valid during this call
    if (!isLast || aborted) return;
    void (parts.length === 1 ? parts[0]! : Buffer.concat(parts)); // the whole body, as a real handler has it
    res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end('{}'));
  });
});
app.listen('127.0.0.1', PORT, (socket) => {
  if (!socket) {
    process.stderr.write(`noop-uws: cannot listen on ${PORT}\n`);
    process.exit(1);
  }
  exitOnSignal(() => uWS.us_listen_socket_close(socket));
});
