/** A seed must name one schedule, or a failing seed could not be rerun. */
import { describe, expect, it } from 'vitest';
import { describeSchedule, makeSchedule } from '../../bench/lib/chaos/fault-schedule.js';
import { chooseSeed, mulberry32 } from '../../bench/lib/chaos/prng.js';

const SETTINGS = { durationMs: 60_000, meanKillGapMs: 3_000, maxDownMs: 1_500 };

describe('chaos fault schedule', () => {
  it('chaos schedule - the same seed gives the same schedule; another seed another one', () => {
    expect(makeSchedule(42, SETTINGS)).toEqual(makeSchedule(42, SETTINGS));
    expect(describeSchedule(makeSchedule(42, SETTINGS))).not.toBe(describeSchedule(makeSchedule(43, SETTINGS)));
  });

  it('chaos schedule - kills never overlap, every node is back and the network calm before the end', () => {
    for (const seed of [1, 2, 3, 0xffffffff]) {
      const schedule = makeSchedule(seed, SETTINGS);
      expect(schedule.kills.length).toBeGreaterThan(5);
      for (const [i, kill] of schedule.kills.entries()) {
        expect(kill.at + kill.downMs).toBeLessThan(SETTINGS.durationMs);
        const next = schedule.kills[i + 1];
        if (next) expect(next.at).toBeGreaterThan(kill.at + kill.downMs);
      }
      expect(schedule.network.at(-1)).toEqual({ at: SETTINGS.durationMs, mode: { kind: 'pass' } });
      // Every fault kind shows up in a minute.
      expect(new Set(schedule.network.map((n) => n.mode.kind))).toEqual(new Set(['pass', 'drop', 'delay', 'error5xx', 'storm429', 'reset-mid-body']));
      expect(new Set(schedule.kills.map((k) => k.target)).size).toBeGreaterThanOrEqual(3);
    }
  });

  it('chaos schedule - mulberry32 is deterministic and KITE_CHAOS_SEED is read strictly', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    expect(Array.from({ length: 5 }, () => a.next())).toEqual(Array.from({ length: 5 }, () => b.next()));
    expect(chooseSeed('123')).toBe(123);
    expect(() => chooseSeed('12x')).toThrow(/KITE_CHAOS_SEED/);
    expect(chooseSeed(undefined)).toBeGreaterThanOrEqual(0);
  });
});
