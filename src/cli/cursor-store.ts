/**
 * The cursor of `kite listen`: the seq of the last event it printed, kept in a file so a restart
 * resumes right after it (contract §8). The file holds one decimal number and a newline.
 *
 * Writes are atomic: the number goes to a temp file in the same directory, is fsynced, then
 * renamed over the cursor. A crash leaves the old number or the new one, never a torn file; a
 * stale temp file from a crash is ignored. Fast events are batched: at most one write is in
 * flight and writes start at most every `intervalMs`, the first at once. `flush()` (and
 * `flushSync()` for a forced exit) writes whatever is pending, so the last event is never lost.
 *
 * Modes, derived from the fields: clean (saved === position), scheduled (timer set), writing.
 * Losing a not-yet-flushed number only replays a few events: listeners get at-least-once.
 */
import { mkdirSync, renameSync, writeFileSync, unlinkSync, fsyncSync, openSync, closeSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { CliError } from './args.js';

let tempCounter = 0;

export class CursorStore {
  private current: number | undefined;
  private saved: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private lastWriteAt = 0;
  /** How many times the file was replaced; lets tests check that fast events are batched. */
  writeCount = 0;

  constructor(
    readonly file: string,
    private readonly onError: (err: Error) => void = () => {},
    private readonly intervalMs = 200,
  ) {}

  /** Read the saved cursor; undefined when there is none yet. A file that is not a number is an error. */
  async load(): Promise<number | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CliError(`cannot read cursor file ${this.file}: ${(err as Error).message}`);
    }
    const value = text.trim();
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
      throw new CliError(`cursor file ${this.file} does not hold a seq (${JSON.stringify(value.slice(0, 40))}); delete it or pass --after`);
    }
    this.current = this.saved = Number(value);
    return this.current;
  }

  get position(): number | undefined {
    return this.current;
  }

  /** Record that every event up to `seq` was printed. Only moves forward. */
  advance(seq: number): void {
    if (this.current !== undefined && seq <= this.current) return;
    this.current = seq;
    if (this.timer || this.writing) return; // picked up when the timer fires or the write ends
    this.schedule();
  }

  private schedule(): void {
    const wait = this.lastWriteAt + this.intervalMs - Date.now();
    if (wait <= 0) this.startWrite();
    else this.timer = setTimeout(() => this.startWrite(), wait);
  }

  private startWrite(): void {
    this.timer = undefined;
    const value = this.current!;
    this.writing = this.write(value).then(
      () => {
        this.writing = undefined;
        this.saved = value;
        this.lastWriteAt = Date.now();
        if (this.current !== value) this.schedule();
      },
      (err: unknown) => {
        this.writing = undefined;
        this.onError(new CliError(`cannot save cursor to ${this.file}: ${(err as Error).message}`));
      },
    );
  }

  private async write(value: number): Promise<void> {
    const temp = this.tempName();
    await mkdir(path.dirname(this.file), { recursive: true });
    try {
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(`${value}\n`);
        await handle.sync(); // otherwise a power loss may persist the rename before the data
      } finally {
        await handle.close();
      }
      await rename(temp, this.file);
      this.writeCount++;
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw err;
    }
  }

  /** Write the latest position now and wait until it is on disk. */
  async flush(): Promise<void> {
    for (;;) {
      clearTimeout(this.timer);
      this.timer = undefined;
      if (this.writing) await this.writing;
      else if (this.current !== undefined && this.current !== this.saved) {
        const value = this.current;
        await this.write(value);
        this.saved = value;
      } else return;
    }
  }

  /** For a forced exit (second Ctrl-C): no awaiting, same atomic write. */
  flushSync(): void {
    clearTimeout(this.timer);
    if (this.current === undefined || this.current === this.saved) return;
    const temp = this.tempName();
    mkdirSync(path.dirname(this.file), { recursive: true });
    try {
      const fd = openSync(temp, 'w', 0o600);
      try {
        writeFileSync(fd, `${this.current}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, this.file);
      this.saved = this.current;
      this.writeCount++;
    } catch (err) {
      try {
        unlinkSync(temp);
      } catch {
        // nothing to clean up
      }
      throw err;
    }
  }

  /** Unique per write, so an async write and a forced sync write never share a temp file. */
  private tempName(): string {
    return `${this.file}.${process.pid}.${++tempCounter}.tmp`;
  }
}
