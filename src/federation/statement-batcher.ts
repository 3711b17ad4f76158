/**
 * Group commit for the statements a node's actors make at once (queue reads, delivered marks):
 * a request goes out at once while fewer than `maxInFlight` statements are running, so a lone
 * actor waits for nothing; requests made meanwhile go together in the next statement, up to
 * `maxWeight` (rows, IDs) a statement, though one request always goes, whatever its weight. A
 * failed statement rejects every request in it, and only those.
 */
export interface StatementBatcherOptions<Req, Res> {
  readonly maxInFlight: number;
  readonly maxWeight: number;
  readonly weight: (request: Req) => number;
  /** One statement for `batch`: resolves to one result per request, in the batch's order. */
  readonly run: (batch: readonly Req[]) => Promise<Res[]>;
}

interface Waiting<Req, Res> {
  readonly request: Req;
  readonly resolve: (result: Res) => void;
  readonly reject: (err: unknown) => void;
}

export class StatementBatcher<Req, Res> {
  private readonly waiting: Waiting<Req, Res>[] = [];
  private inFlight = 0;

  constructor(private readonly options: StatementBatcherOptions<Req, Res>) {}

  submit(request: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    const { maxInFlight, maxWeight, weight } = this.options;
    while (this.inFlight < maxInFlight && this.waiting.length > 0) {
      let take = 1;
      let total = weight(this.waiting[0]!.request);
      while (take < this.waiting.length && total + weight(this.waiting[take]!.request) <= maxWeight) total += weight(this.waiting[take++]!.request);
      const batch = this.waiting.splice(0, take);
      this.inFlight++;
      this.send(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async send(batch: Waiting<Req, Res>[]): Promise<void> {
    try {
      const results = await this.options.run(batch.map((w) => w.request));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }
}
