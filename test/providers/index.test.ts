import { describe, expect, it } from 'vitest';
import { getProvider, isProviderName, PROVIDER_NAMES } from '../../src/providers/index.js';

describe('provider registry', () => {
  it('finds each listed provider under its own name', () => {
    expect(PROVIDER_NAMES).toEqual(['stripe', 'github', 'standard', 'cloudevents']);
    for (const name of PROVIDER_NAMES) expect(getProvider(name)?.name).toBe(name);
  });

  it('finds nothing for unknown names, including object built-ins', () => {
    for (const name of ['svix', 'Stripe', '__proto__', 'toString', 'constructor', '']) {
      expect(getProvider(name), name).toBeUndefined();
      expect(isProviderName(name), name).toBe(false);
    }
  });
});
