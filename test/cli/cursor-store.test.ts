import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CursorStore } from '../../src/cli/cursor-store.js';
import { tempDir } from './helpers.js';

const cursorIn = (dir: string) => path.join(dir, 'cursors', 'acme.cursor');
const leftovers = (file: string) => readdirSync(path.dirname(file)).filter((n) => n !== path.basename(file));

describe('cursor store', () => {
  it('cursor - a fresh store has no position, and a saved one is what the next start resumes from', async () => {
    const file = cursorIn(tempDir());
    const first = new CursorStore(file);
    expect(await first.load()).toBeUndefined();
    first.advance(41);
    first.advance(42);
    await first.flush();
    expect(readFileSync(file, 'utf8')).toBe('42\n');
    const restarted = new CursorStore(file);
    expect(await restarted.load()).toBe(42);
    expect(restarted.position).toBe(42);
  });

  it('cursor - each save replaces the file by rename (new inode) and leaves no temp file behind', async () => {
    const file = cursorIn(tempDir());
    const store = new CursorStore(file, undefined, 0);
    store.advance(1);
    await store.flush();
    const before = statSync(file).ino;
    store.advance(2);
    await store.flush();
    // Writing in place would keep the inode, and a crash mid-write could leave an empty file.
    expect(statSync(file).ino).not.toBe(before);
    expect(readFileSync(file, 'utf8')).toBe('2\n');
    expect(leftovers(file)).toEqual([]);
  });

  it('cursor - a temp file left by a crash mid-write does not change what is loaded', async () => {
    const dir = tempDir();
    const file = cursorIn(dir);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, '7\n');
    writeFileSync(`${file}.12345.1.tmp`, '8'); // torn: the crash came before rename
    expect(await new CursorStore(file).load()).toBe(7);
  });

  it('cursor - a burst of events is saved in few writes and flush still saves the last one', async () => {
    const file = cursorIn(tempDir());
    const store = new CursorStore(file, undefined, 10_000);
    for (let seq = 1; seq <= 1000; seq++) store.advance(seq);
    await store.flush();
    expect(readFileSync(file, 'utf8')).toBe('1000\n');
    expect(store.writeCount).toBeLessThanOrEqual(2);
  });

  it('cursor - a single event is saved without waiting for flush', async () => {
    const file = cursorIn(tempDir());
    const store = new CursorStore(file);
    store.advance(5);
    const saved = () => {
      try {
        return readFileSync(file, 'utf8') === '5\n';
      } catch {
        return false;
      }
    };
    await expect.poll(saved, { timeout: 5000, interval: 10 }).toBe(true);
  });

  it('cursor - the position never moves backwards', async () => {
    const file = cursorIn(tempDir());
    const store = new CursorStore(file);
    store.advance(10);
    store.advance(3);
    await store.flush();
    expect(store.position).toBe(10);
    expect(readFileSync(file, 'utf8')).toBe('10\n');
  });

  it('cursor - flushSync saves the pending position for a forced exit', async () => {
    const file = cursorIn(tempDir());
    const store = new CursorStore(file, undefined, 10_000);
    store.advance(1);
    await store.flush();
    store.advance(2); // within the interval: only scheduled
    store.flushSync();
    expect(readFileSync(file, 'utf8')).toBe('2\n');
    expect(leftovers(file)).toEqual([]);
  });

  it('cursor - a file that is not a seq is refused with its path', async () => {
    const file = cursorIn(tempDir());
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'not a number');
    await expect(new CursorStore(file).load()).rejects.toThrow(`cursor file ${file} does not hold a seq`);
  });

  it('cursor - a save that fails is reported, not swallowed', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'cursors'), 'a file where the directory should be');
    const errors: Error[] = [];
    const store = new CursorStore(cursorIn(dir), (err) => errors.push(err));
    store.advance(1);
    await expect.poll(() => errors.length, { timeout: 5000, interval: 10 }).toBe(1);
    expect(errors[0]!.message).toContain('cannot save cursor');
    await expect(store.flush()).rejects.toThrow();
  });
});
