/**
 * A small seeded PRNG (mulberry32), so a chaos run's faults and load are a pure function of its
 * seed: a failing seed printed by the checker replays the same schedule (timing on a loaded
 * machine still varies, so a replay is close, not identical).
 */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** One element chosen by weight. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T;
}

export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
    weighted: (choices) => {
      const total = choices.reduce((sum, [, w]) => sum + w, 0);
      let roll = next() * total;
      for (const [value, weight] of choices) {
        roll -= weight;
        if (roll < 0) return value;
      }
      return choices[choices.length - 1]![0];
    },
  };
}

/** KITE_CHAOS_SEED when set (to rerun a failure), else a fresh one. */
export function chooseSeed(fromEnv: string | undefined): number {
  if (fromEnv !== undefined && fromEnv !== '') {
    const seed = Number(fromEnv);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`KITE_CHAOS_SEED must be an integer 0–4294967295 (got ${JSON.stringify(fromEnv)})`);
    return seed;
  }
  return Math.floor(Math.random() * 0xffffffff);
}
