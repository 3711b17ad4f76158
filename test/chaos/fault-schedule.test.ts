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

  it('chaos schedule - database outages last 1–4 s one at a time, end before the faults do, and come in every kind', () => {
    const kinds = new Set<string>();
    for (const seed of [1, 2, 3, 0xffffffff]) {
      const schedule = makeSchedule(seed, SETTINGS);
      // The CI run's 50 s has some in every seed.
      expect(makeSchedule(seed, { ...SETTINGS, durationMs: 50_000 }).database.length).toBeGreaterThanOrEqual(2);
      for (const [i, outage] of schedule.database.entries()) {
        kinds.add(`${outage.instance}-${outage.mode}`);
        expect(outage.downMs).toBeGreaterThanOrEqual(1_000);
        expect(outage.downMs).toBeLessThanOrEqual(4_000);
        expect(outage.at + outage.downMs).toBeLessThan(SETTINGS.durationMs);
        const next = schedule.database[i + 1];
        if (next) expect(next.at).toBeGreaterThan(outage.at + outage.downMs);
      }
    }
    expect(kinds).toEqual(new Set(['a-refuse', 'a-blackhole', 'b-refuse', 'b-blackhole']));
  });

  it('chaos schedule - the database track leaves the kills and network steps of a seed as they were', () => {
    const withOutages = makeSchedule(42, SETTINGS);
    const fewer = makeSchedule(42, { ...SETTINGS, meanOutageGapMs: 30_000, maxOutageMs: 1_000 });
    expect(fewer.database).not.toEqual(withOutages.database);
    expect({ kills: fewer.kills, network: fewer.network }).toEqual({ kills: withOutages.kills, network: withOutages.network });
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
