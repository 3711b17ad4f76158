/**
 * The providers a source may name. Adding one means writing its Provider and listing it here;
 * the admin API validates `provider` against PROVIDER_NAMES and ingest looks it up by name.
 */
import { cloudeventsProvider } from './cloudevents.js';
import { githubProvider } from './github.js';
import { standardProvider } from './standard.js';
import { stripeProvider } from './stripe.js';
import type { Provider } from './types.js';

export const PROVIDER_NAMES = ['stripe', 'github', 'standard', 'cloudevents'] as const;

export type ProviderName = (typeof PROVIDER_NAMES)[number];

const PROVIDERS: ReadonlyMap<string, Provider> = new Map<ProviderName, Provider>([
  ['stripe', stripeProvider],
  ['github', githubProvider],
  ['standard', standardProvider],
  ['cloudevents', cloudeventsProvider],
]);

/** The provider called `name`, or undefined (a Map, so `__proto__` or `toString` find nothing). */
export function getProvider(name: string): Provider | undefined {
  return PROVIDERS.get(name);
}

export function isProviderName(name: string): name is ProviderName {
  return PROVIDERS.has(name);
}
