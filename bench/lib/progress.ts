/**
 * A plain-text progress line on stderr. On a terminal it is redrawn in place (`\r`); when stderr
 * is a file or pipe a line is written at most every 5 s, so logs stay readable.
 */
export class Progress {
  private lastPlain = 0;
  private drawn = false;
  private readonly tty = Boolean(process.stderr.isTTY);

  /** `fraction` in 0..1 of the current step; `detail` e.g. "41,230 req/s". */
  update(label: string, fraction: number, detail = ''): void {
    const width = 24;
    const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const line = `${label} ${bar} ${Math.round(fraction * 100)}% ${detail}`;
    if (this.tty) {
      const columns = process.stderr.columns ?? 120;
      process.stderr.write(`\r${line.slice(0, columns - 1).padEnd(columns - 1)}`);
      this.drawn = true;
    } else if (Date.now() - this.lastPlain >= 5000 || fraction >= 1) {
      this.lastPlain = Date.now();
      process.stderr.write(`${line}\n`);
    }
  }

  /** A message on its own line (clears the progress line first). */
  log(message: string): void {
    this.clear();
    process.stderr.write(`${message}\n`);
  }

  clear(): void {
    if (this.tty && this.drawn) {
      process.stderr.write(`\r${' '.repeat((process.stderr.columns ?? 120) - 1)}\r`);
      this.drawn = false;
    }
  }
}

/** Calls `tick(fraction)` every `everyMs` until `durationMs` passed; returns a stop function. */
export function ticker(durationMs: number, tick: (fraction: number) => void, everyMs = 250): () => void {
  const started = Date.now();
  const timer = setInterval(() => tick(Math.min(1, (Date.now() - started) / durationMs)), everyMs);
  return () => clearInterval(timer);
}
