/**
 * The HTTPS ceiling: a trivial node:https server that reads the body and answers 200 with a short
 * JSON body, keep-alive. Certificate and key from BENCH_TLS_CERT / BENCH_TLS_KEY (files).
 * Optional BENCH_DELAY_MS delays every answer to a POST (a slow peer; GETs such as /ready answer at once).
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';

const port = Number(process.env['BENCH_PORT'] ?? 0);
const delayMs = Number(process.env['BENCH_DELAY_MS'] ?? 0);
const answer = Buffer.from('{"items":[]}');
const server = https.createServer(
  { cert: readFileSync(process.env['BENCH_TLS_CERT']!), key: readFileSync(process.env['BENCH_TLS_KEY']!), keepAliveTimeout: 60_000 },
  (req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      const reply = () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
        res.end(answer);
      };
      if (delayMs > 0 && req.method === 'POST') setTimeout(reply, delayMs);
      else reply();
    });
  },
);
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
