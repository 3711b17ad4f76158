/** Shared by the baseline servers: the port, and the frame a listener gets (shaped like Kite's). */

export const PORT = Number(process.env['BENCH_PORT'] ?? '0');
if (!Number.isInteger(PORT) || PORT <= 0) throw new Error('BENCH_PORT must be set');

export const READY_FRAME = '{"type":"ready","head":0}';

/** A frame the size and shape of Kite's `{"type":"event","seq","event":<CloudEvent>}`. */
export function eventFrame(seq: number, body: Buffer): Buffer {
  const head =
    `{"type":"event","seq":${seq},"event":{"specversion":"1.0","id":"evt_baseline_${seq}",` +
    `"source":"http://127.0.0.1:${PORT}/hooks/bench/stripe","type":"com.stripe.payment_intent.succeeded",` +
    `"time":"${new Date().toISOString()}","datacontenttype":"application/json","data":`;
  return Buffer.concat([Buffer.from(head), body, CLOSE]);
}

const CLOSE = Buffer.from('}}');

/** Exit quietly on SIGTERM/SIGINT (the bench stops its children this way). */
export function exitOnSignal(stop: () => void): void {
  const onSignal = () => {
    stop();
    process.exit(0);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
