/**
 * Second fan-out baseline: node:http plus the `ws` library's WebSocketServer. Each POST's body is
 * wrapped in an event frame and sent to every client with `client.send` in a loop.
 */
import http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { eventFrame, exitOnSignal, PORT, READY_FRAME } from './common.js';

let seq = 0;
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/ready') return void res.end('ok');
  const parts: Buffer[] = [];
  req.on('data', (chunk: Buffer) => parts.push(chunk));
  req.on('end', () => {
    const frame = eventFrame(++seq, Buffer.concat(parts));
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(frame, { binary: false });
    }
    const body = `{"seq":${seq}}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 120_000;
const wss = new WebSocketServer({ server, path: '/listen', perMessageDeflate: false });
wss.on('connection', (socket) => socket.send(READY_FRAME));
server.listen(PORT, '127.0.0.1');
exitOnSignal(() => server.close());
