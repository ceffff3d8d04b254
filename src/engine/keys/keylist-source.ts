// Where a retry's keys come from (Plan.keys): exactly the keys a finished run
// failed on, in S3's order, so the watermark and checkpoint work as for a listing.
import type { ListedObject } from './lister.js';
import { compareKeys, inRange } from './shards.js';
import type { Plan } from '../types.js';

/** The plan's keys inside its prefix and `(startAfter, endAt]`, sorted in S3's order, each once. */
export function keysOfRun(plan: Pick<Plan, 'keys' | 'prefix' | 'startAfter' | 'endAt'>): string[] {
  const range = { startAfter: plan.startAfter ?? '', ...(plan.endAt !== undefined ? { endAt: plan.endAt } : {}) };
  const keys = (plan.keys ?? []).filter((k) => k.startsWith(plan.prefix) && inRange(k, range));
  keys.sort(compareKeys);
  return keys.filter((k, i) => i === 0 || k !== keys[i - 1]);
}

/** The keys as listed objects: size and storage class are unknown until each is HEADed. */
export function* fromKeys(keys: readonly string[]): Generator<ListedObject> {
  for (const key of keys) yield { key, size: 0 };
}
