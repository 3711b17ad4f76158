/**
 * Ceiling for fan-out: uWebSockets.js pub/sub. Listeners connect to /listen and subscribe to one
 * topic; each POST's body is wrapped in an event frame and sent to all with one `app.publish`.
 */
import uWS from 'uWebSockets.js';
import { eventFrame, exitOnSignal, PORT, READY_FRAME } from './common.js';

const TOPIC = 'events';
let seq = 0;
const app = uWS.App();
app.get('/ready', (res) => void res.end('ok'));
app.ws('/listen', {
  maxBackpressure: 32 * 1024 * 1024,
  closeOnBackpressureLimit: 0,
  idleTimeout: 120,
  open: (ws) => {
    ws.subscribe(TOPIC);
    ws.send(READY_FRAME, false);
  },
});
app.post('/*', (res) => {
  let aborted = false;
  const parts: Buffer[] = [];
  res.onAborted(() => (aborted = true));
  res.onData((chunk, isLast) => {
    parts.push(Buffer.from(chunk.slice(0)));
    if (!isLast || aborted) return;
    const frame = eventFrame(++seq, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    app.publish(TOPIC, frame, false);
    res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end(`{"seq":${seq}}`));
  });
});
app.listen('127.0.0.1', PORT, (socket) => {
  if (!socket) {
    process.stderr.write(`publish-uws: cannot listen on ${PORT}\n`);
    process.exit(1);
  }
  exitOnSignal(() => uWS.us_listen_socket_close(socket));
});
