/** The database outage's proxy (bench/lib/tcp-proxy.ts): refuse, blackhole and back, against an echo server. */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy } from '../../bench/lib/tcp-proxy.js';

let echo: net.Server;
let proxy: TcpProxy;

beforeAll(async () => {
  echo = net.createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  proxy = await TcpProxy.start((echo.address() as net.AddressInfo).port, '127.0.0.1', { downOnSignal: false });
});

afterAll(async () => {
  await proxy.close();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

/** Connects, writes `ping` and reports the echo, or how it failed, within `ms`. */
function ping(ms = 500): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    const finish = (outcome: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish('silence'), ms);
    socket.on('connect', () => socket.write('ping'));
    socket.on('data', (data) => finish(`echo ${data.toString()}`));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    socket.on('close', () => finish('closed'));
  });
}

/** An open connection through the proxy (one echo seen), and a promise of how it ends. */
async function openConnection(): Promise<{ ended: Promise<string> }> {
  const socket = net.connect(proxy.port, '127.0.0.1');
  const ended = new Promise<string>((resolve) => socket.on('close', () => resolve('closed')).on('error', () => {}));
  await new Promise((resolve) => socket.once('data', resolve).write('hello'));
  return { ended };
}

describe('chaos tcp proxy', () => {
  it('chaos tcp proxy - down cuts open connections and refuses new ones; up forwards again', async () => {
    expect(await ping()).toBe('echo ping');
    const open = await openConnection();
    await proxy.down();
    expect(await open.ended).toBe('closed');
    expect(await ping()).toBe('ECONNREFUSED');
    await proxy.up();
    expect(await ping()).toBe('echo ping');
  });

  it('chaos tcp proxy - blackhole cuts open connections and accepts new ones without answering; up closes those and forwards again', async () => {
    const open = await openConnection();
    await proxy.blackhole();
    expect(proxy.isUp).toBe(false);
    expect(await open.ended).toBe('closed');
    expect(await ping(300)).toBe('silence');
    const held = openHeld();
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the proxy accept it
    await proxy.up();
    expect(await held).toBe('closed');
    expect(proxy.isUp).toBe(true);
    expect(await ping()).toBe('echo ping');
  });
});

/** A connection made during a blackhole: how it ends once the proxy is up again. */
function openHeld(): Promise<string> {
  const socket = net.connect(proxy.port, '127.0.0.1');
  socket.write('ping');
  return new Promise((resolve) => {
    socket.on('data', (data) => resolve(`echo ${data.toString()}`));
    socket.on('close', () => resolve('closed'));
    socket.on('error', () => {});
  });
}
