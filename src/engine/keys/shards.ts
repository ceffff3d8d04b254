// Cutting a job's key space into shards `(startAfter, endAt]` (the last one
// open-ended) so that every key belongs to exactly one shard and the shards are
// about the same size. Planning is pure (a weighted sample in, cut points out);
// the sample comes from an inventory key stream (KeySampler) or from a cheap
// sampling pass over S3 (sampleKeys).
//
// Order: S3 sorts keys by their UTF-8 bytes. JavaScript's `<` compares UTF-16
// code units, which agrees with UTF-8 byte order except for one case: a
// character above U+FFFF is a surrogate pair (0xD800-0xDFFF) in UTF-16, which
// `<` puts BEFORE U+E000..U+FFFF, while UTF-8 (4 bytes, 0xF0..) puts it AFTER
// them (UTF-8 byte order is code point order). A shard boundary computed with
// `<` could then disagree with where S3's listing puts a key (e.g. an emoji
// key vs a private-use-area key), and a key could fall in no shard or in two.
// compareKeys compares in code point order, so it agrees with S3.
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { JobError } from '../s3/errors.js';
import { decodeS3Url } from './lister.js';

export interface Shard {
  index: number;
  /** Exclusive lower bound ("" = from the first key). */
  startAfter: string;
  /** Inclusive upper bound; absent on the last shard (to the end of the key space). */
  endAt?: string;
}

export interface WeightedKey {
  key: string;
  /** How many keys of the real key set this sample key stands for. */
  weight: number;
}

/** Maps a UTF-16 code unit at or above 0xD800 so that surrogates sort after U+E000..U+FFFF. */
function highUnit(u: number): number {
  return u >= 0xe000 ? u - 0x800 : u + 0x2000;
}

/** Compares two keys in S3's order (UTF-8 bytes, i.e. code points). */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x >= 0xd800 && y >= 0xd800 ? highUnit(x) - highUnit(y) : x - y;
  }
  return a.length - b.length;
}

/** Whether the key belongs to the shard `(startAfter, endAt]`. */
export function inRange(key: string, shard: Pick<Shard, 'startAfter' | 'endAt'>): boolean {
  if (shard.startAfter !== '' && compareKeys(key, shard.startAfter) <= 0) return false;
  return shard.endAt === undefined || compareKeys(key, shard.endAt) <= 0;
}

/**
 * Cuts at the weighted quantiles of the sample: shard i ends at the first
 * sample key where the running weight reaches (i+1)/n of the total. Fewer than
 * n shards come back when the sample has too few distinct keys to cut on.
 * `startAfter` is where the first shard starts (the job's own lower bound).
 */
export function planShards(
  sample: readonly (string | WeightedKey)[],
  n: number,
  opts: { startAfter?: string } = {},
): Shard[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`shard count must be a positive integer, got ${n}`);
  const lower = opts.startAfter ?? '';
  const items = sample
    .map((s) => (typeof s === 'string' ? { key: s, weight: 1 } : s))
    .filter((s) => s.weight > 0 && (lower === '' || compareKeys(s.key, lower) > 0))
    .sort((a, b) => compareKeys(a.key, b.key));
  const total = items.reduce((sum, s) => sum + s.weight, 0);
  const cuts: string[] = [];
  let running = 0;
  let next = 1;
  for (const item of items) {
    running += item.weight;
    let crossed = false;
    while (next < n && running >= (total * next) / n) {
      next++;
      crossed = true;
    }
    // A cut on the very last key would leave the last shard empty: no keys after it in the sample.
    if (crossed && item !== items[items.length - 1] && cuts[cuts.length - 1] !== item.key) cuts.push(item.key);
  }
  const shards: Shard[] = [];
  let startAfter = lower;
  for (const endAt of cuts) {
    shards.push({ index: shards.length, startAfter, endAt });
    startAfter = endAt;
  }
  shards.push({ index: shards.length, startAfter });
  return shards;
}

/**
 * A uniform sample of a key stream of unknown length in fixed memory
 * (reservoir sampling), for planning from an inventory: `add` every key, then
 * `sample()` gives keys weighted so that the weights sum to the keys seen.
 * The generator is seeded: the same stream gives the same plan.
 */
export class KeySampler {
  private readonly keys: string[] = [];
  private seen = 0;
  private state: number;

  constructor(
    private readonly capacity = 65_536,
    seed = 0x9e3779b9,
  ) {
    this.state = seed >>> 0 || 1;
  }

  /** xorshift32: enough for choosing reservoir slots, and reproducible. */
  private random(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 0x1_0000_0000;
  }

  add(key: string): void {
    this.seen++;
    if (this.keys.length < this.capacity) {
      this.keys.push(key);
      return;
    }
    const slot = Math.floor(this.random() * this.seen);
    if (slot < this.capacity) this.keys[slot] = key;
  }

  get count(): number {
    return this.seen;
  }

  sample(): WeightedKey[] {
    const weight = this.keys.length === 0 ? 0 : this.seen / this.keys.length;
    return this.keys.map((key) => ({ key, weight }));
  }
}

// ---- Sampling S3 cheaply -------------------------------------------------

/** The largest code point: a key + this sorts after every key that starts with key and a lower character. */
const MAX_CHAR = '\u{10FFFF}';

export interface SampleOptions {
  bucket: string;
  prefix: string;
  /** Most ListObjectsV2 requests to spend (each reads up to pageSize keys), before growing (below). */
  maxRequests: number;
  /**
   * Requests added to the budget per sub-prefix a delimiter listing finds (default 0: the budget is fixed). A planner does
   * not know the layout in advance: a budget close to the number of sub-prefixes (30 dates for 4 shards) is
   * spent probing them, and the one that holds most keys is left unexplored, so its cut points are guesses.
   */
  requestsPerSubPrefix?: number;
  /** The most the budget may grow to with requestsPerSubPrefix (default 512). */
  maxGrownRequests?: number;
  pageSize?: number;
  signal?: AbortSignal;
}

export interface KeySample {
  keys: WeightedKey[];
  /** Estimated number of keys under the prefix (exact when `exact`). */
  estimatedCount: number;
  /** Whether every key was seen (the budget sufficed for a full listing). */
  exact: boolean;
  requests: number;
}

interface Estimate {
  count: number;
  keys: WeightedKey[];
  exact: boolean;
}

interface Page {
  keys: string[];
  prefixes: string[];
  truncated: boolean;
  token?: string;
}

/** A range whose first page did not hold all of it. */
interface Large {
  prefix: string;
  page: Page;
}

/**
 * A weighted sample of the keys under a prefix, built with at most
 * `maxRequests` LIST requests, for planShards.
 *
 * The walk: a delimiter ("/") listing of a prefix gives its sub-prefixes; each
 * is probed once (a small one is then listed in full, exact), and the large
 * ones share the budget left, each explored the same way one level down (what
 * an early one leaves unspent is given, in a second round, to those still not
 * known exactly). A large prefix without sub-prefixes (flat keys) is explored by skip
 * probes: list a page, group its keys by their next character, count the
 * groups the page closes exactly, and jump past a group the page did not close
 * (StartAfter = prefix + char + U+10FFFF), which is then explored the same way.
 * What the budget cannot reach is estimated from its explored siblings (their
 * mean size), or from what was seen of it. Skewed trees get the requests where
 * the keys are, so a date prefix with 90% of the keys is split finely. The
 * budget should be several times the number of sub-prefixes at the top.
 * Only the balance depends on the sample: any cut points partition the keys.
 */
export async function sampleKeys(s3: S3Client, opts: SampleOptions): Promise<KeySample> {
  if (opts.maxRequests <= 0)
    throw new RangeError(`sampling needs at least one request, got maxRequests ${opts.maxRequests}`);
  const sampler = new Sampler(s3, opts);
  const est = await sampler.explore(opts.prefix, await sampler.list(opts.prefix, { delimiter: true }));
  return { keys: est.keys, estimatedCount: Math.round(est.count), exact: est.exact, requests: sampler.requests };
}

function unitKeys(keys: string[]): WeightedKey[] {
  return keys.map((key) => ({ key, weight: 1 }));
}

/** What is known of a partly seen range: the seen keys, and the rest of the estimate at the range's end. */
function partly(prefix: string, seen: string[], count: number): WeightedKey[] {
  const keys = unitKeys(seen);
  if (count > seen.length) keys.push({ key: prefix + MAX_CHAR, weight: count - seen.length });
  return keys;
}

/** One sampling walk (see sampleKeys): the request budget and what it has spent. */
class Sampler {
  /** Requests the walk may still make (a share of it while one range is explored). */
  private left: number;
  requests = 0;
  /** Requests added to the budget so far, for sub-prefixes found (at most cap - maxRequests). */
  private granted = 0;
  private readonly pageSize: number;
  private readonly cap: number;

  constructor(
    private readonly s3: S3Client,
    private readonly opts: SampleOptions,
  ) {
    this.left = opts.maxRequests;
    this.pageSize = opts.pageSize ?? 1000;
    this.cap = Math.max(opts.maxRequests, opts.maxGrownRequests ?? 512);
  }

  async list(prefix: string, o: { delimiter?: boolean; startAfter?: string; token?: string }): Promise<Page> {
    this.left--;
    this.requests++;
    const { bucket, signal } = this.opts;
    let page;
    try {
      page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix || undefined,
          Delimiter: o.delimiter ? '/' : undefined,
          EncodingType: 'url',
          MaxKeys: this.pageSize,
          ...(o.token ? { ContinuationToken: o.token } : { StartAfter: o.startAfter || undefined }),
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      if (err instanceof JobError) throw err; // the endpoint refused by the address guard: for a person to fix
      throw new Error(
        `sampling bucket "${bucket}" prefix "${prefix}": ListObjectsV2 failed: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    const decode = (v: string): string => (page.EncodingType === 'url' ? decodeS3Url(v) : v);
    return {
      keys: (page.Contents ?? []).flatMap((c) => (c.Key === undefined ? [] : [decode(c.Key)])),
      prefixes: (page.CommonPrefixes ?? []).flatMap((c) => (c.Prefix === undefined ? [] : [decode(c.Prefix)])),
      truncated: page.IsTruncated === true,
      ...(page.NextContinuationToken ? { token: page.NextContinuationToken } : {}),
    };
  }

  /**
   * The second pass over the large children of a range (each already probed
   * once): the budget left is shared equally; a child the budget cannot reach
   * is estimated as the mean of the explored ones (at least what was seen of it).
   */
  private async exploreLarge(children: Large[], explore: (child: Large) => Promise<Estimate>): Promise<Estimate> {
    const results: (Estimate | undefined)[] = children.map(() => undefined);
    const spent: number[] = children.map(() => 0);
    // Round 1 shares the budget equally; what the small ones leave unspent goes,
    // in round 2, to a fresh exploration of the ones still not known exactly.
    for (const round of [1, 2]) {
      const todo = children.flatMap((_, i) => (round === 1 || results[i]?.exact === false ? [i] : []));
      for (let j = 0; j < todo.length; j++) {
        const i = todo[j]!;
        if (this.left <= 0) break;
        const share = Math.max(1, Math.floor(this.left / (todo.length - j)));
        if (round === 2 && share <= spent[i]!) continue; // no better than the first look
        const rest = this.left - share;
        this.left = share;
        const est = await explore(children[i]!);
        spent[i] = share - this.left;
        this.left += rest; // an unspent share goes back to the pool
        results[i] = est;
      }
    }
    const out: Estimate = { count: 0, keys: [], exact: true };
    const explored = results.flatMap((r) => (r ? [r.count] : []));
    const mean = explored.length > 0 ? explored.reduce((a, b) => a + b, 0) / explored.length : 0;
    children.forEach((child, i) => {
      const est = results[i] ?? { count: Math.max(mean, child.page.keys.length, 1), keys: [], exact: false };
      out.count += est.count;
      out.keys.push(...(results[i] ? est.keys : partly(child.prefix, child.page.keys, est.count)));
      out.exact &&= est.exact;
    });
    return out;
  }

  /**
   * Flat keys under `prefix` (no delimiter) from its first page: skip probes
   * enumerate the next-character groups (pass 1), then the groups no page
   * closed are explored the same way one character down (pass 2).
   */
  private async skipScan(prefix: string, first: Page): Promise<Estimate> {
    if (!first.truncated) return { count: first.keys.length, keys: unitKeys(first.keys), exact: true };
    const exact: string[] = [];
    const large: Large[] = [];
    let open = false;
    for (let page = first; ;) {
      const groups = new Map<string, string[]>();
      for (const key of page.keys) {
        // The key equal to the prefix itself has no next character: its own group, always complete.
        const child = key.length > prefix.length ? prefix + String.fromCodePoint(key.codePointAt(prefix.length)!) : key;
        const g = groups.get(child);
        if (g) g.push(key);
        else groups.set(child, [key]);
      }
      const entries = [...groups.entries()];
      const last = entries.pop();
      for (const [, keys] of entries) exact.push(...keys);
      if (last === undefined) break;
      if (!page.truncated) {
        exact.push(...last[1]);
        break;
      }
      // The page began at this group's first key: it holds the group's first keys.
      large.push({ prefix: last[0], page: { keys: last[1], prefixes: [], truncated: true } });
      if (this.left <= 0) {
        open = true; // keys after this group were never reached
        break;
      }
      page = await this.list(prefix, { startAfter: last[0] + MAX_CHAR });
    }
    // A group's exploration first reads on from its last seen key: often that closes it.
    const est = await this.exploreLarge(large, async (c) => {
      const next = await this.list(c.prefix, { startAfter: c.page.keys[c.page.keys.length - 1] });
      return this.skipScan(c.prefix, { keys: [...c.page.keys, ...next.keys], prefixes: [], truncated: next.truncated });
    });
    return { count: exact.length + est.count, keys: [...unitKeys(exact), ...est.keys], exact: est.exact && !open };
  }

  /**
   * A prefix from its first delimiter page: direct keys are counted exactly,
   * each sub-prefix is probed once (pass 1: small ones are then known exactly),
   * and the large ones share the budget left (pass 2). Flat and large: skip probes.
   */
  async explore(prefix: string, first: Page): Promise<Estimate> {
    if (first.prefixes.length === 0) return this.skipScan(prefix, first);
    const direct: string[] = [...first.keys];
    const subs: string[] = [...first.prefixes];
    let open = false;
    for (let page = first; page.truncated && page.token;) {
      if (this.left <= 0) {
        open = true;
        break;
      }
      page = await this.list(prefix, { delimiter: true, token: page.token });
      direct.push(...page.keys);
      subs.push(...page.prefixes);
    }
    this.grow(subs.length);
    let count = direct.length;
    const keys = unitKeys(direct);
    const large: Large[] = [];
    const unprobed: string[] = [];
    const probed: number[] = [];
    for (const sub of subs) {
      if (this.left <= 0) {
        unprobed.push(sub);
        continue;
      }
      const page = await this.list(sub, { delimiter: true });
      if (!page.truncated && page.prefixes.length === 0) {
        count += page.keys.length;
        keys.push(...unitKeys(page.keys));
        probed.push(page.keys.length);
      } else large.push({ prefix: sub, page });
    }
    const est = await this.exploreLarge(large, (c) => this.explore(c.prefix, c.page));
    count += est.count;
    keys.push(...est.keys);
    // Sub-prefixes the budget never reached: the mean of the ones it did.
    const all = [...probed, ...(large.length > 0 ? [est.count / large.length] : [])];
    const mean = all.length > 0 ? all.reduce((a, b) => a + b, 0) / all.length : 1;
    for (const sub of unprobed) {
      count += mean;
      keys.push({ key: sub + MAX_CHAR, weight: mean });
    }
    return { count, keys, exact: est.exact && !open && unprobed.length === 0 };
  }

  /**
   * Room to explore the large sub-prefixes after probing them all, at every level where a listing finds them
   * (dates are often one level down: logs/2026-11-30/), within the cap.
   */
  private grow(subPrefixes: number): void {
    const grow = Math.min(
      (this.opts.requestsPerSubPrefix ?? 0) * subPrefixes,
      this.cap - this.opts.maxRequests - this.granted,
    );
    if (grow > 0) {
      this.left += grow;
      this.granted += grow;
    }
  }
}
