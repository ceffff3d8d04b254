// Putting inventory rows into S3's key order. The watermark checkpoint needs the
// keys of a run in the order S3 lists them (compareKeys), and S3 Inventory does
// not promise any order across or within its data files. So the rows are read
// in full first (which also checks every file's MD5 before any object is
// touched), sorted in chunks of fixed size, chunks beyond the first spilled to
// a temporary directory, and merged. Memory holds one chunk, however large the
// inventory. A key listed twice (two rows for one key) is yielded once.
//
// The spill is where a large report meets the pod's disk: a pod whose volume
// fills is evicted, and its next run sorts again and is evicted again. So
// before each chunk is written the room left is checked (free space, and the
// budget S3EO_SPILL_LIMIT_MIB the chart sets to its volume's size, since an
// emptyDir's limit is not visible to statfs), projected over the whole report
// from how much of it was read, and a sort that would not fit fails at once
// with the bytes it needs, the directory and the setting to change. A full
// disk (ENOSPC) fails the same way.
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { JobError } from '../s3/errors.js';
import type { InventoryEntry } from './inventory.js';
import { compareKeys } from './shards.js';

/** The reason a run fails with when its report does not fit the spill directory. */
export const SPILL_SPACE_EXHAUSTED = 'SpillSpaceExhausted';

/** The spill budget in bytes from S3EO_SPILL_LIMIT_MIB (the chart sets it to the spill volume's size). */
export function spillLimitBytes(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const mib = Number(env.S3EO_SPILL_LIMIT_MIB);
  return env.S3EO_SPILL_LIMIT_MIB && Number.isFinite(mib) && mib > 0 ? mib * 1024 * 1024 : undefined;
}

async function statfsFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/** A spilled row: a JSON array, not an object, so field names are not written a million times. */
function encodeRow(e: InventoryEntry): string {
  return `${JSON.stringify([e.key, e.size ?? null, e.encryptionStatus ?? null, e.bucketKeyStatus ?? null, e.storageClass ?? null])}\n`;
}

function decodeRow(line: string): InventoryEntry {
  const [key, size, encryptionStatus, bucketKeyStatus, storageClass] = JSON.parse(line) as [
    string,
    number | null,
    string | null,
    string | null,
    string | null,
  ];
  return {
    key,
    ...(size !== null ? { size } : {}),
    ...(encryptionStatus !== null ? { encryptionStatus } : {}),
    ...(bucketKeyStatus !== null ? { bucketKeyStatus } : {}),
    ...(storageClass !== null ? { storageClass } : {}),
  };
}

const MIB = 1024 * 1024;
/** Bytes spilled by every sort of this process now (the shards of in-process jobs share one volume). */
let spilledInProcess = 0;
const mib = (n: number): string => (n / MIB).toFixed(1);

export interface SortedEntries {
  /** Keys (distinct when they fit in one chunk). */
  readonly count: number;
  /** Bytes written to the spill directory. */
  readonly spilledBytes: number;
  /** The entries in S3's key order; call once. */
  entries(): AsyncGenerator<InventoryEntry>;
  /** Removes the spilled chunks (also when entries() was never read to its end). */
  dispose(): void;
}

const byKey = (a: InventoryEntry, b: InventoryEntry): number => compareKeys(a.key, b.key);

async function* readChunk(path: string): AsyncGenerator<InventoryEntry> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  try {
    for await (const line of lines) if (line) yield decodeRow(line);
  } finally {
    lines.close();
  }
}

export interface SpillOptions {
  /** Where the chunks go (default: the system's temporary directory, TMPDIR). */
  tmp?: string;
  /** Bytes the spill may take at most (default: spillLimitBytes(), else only the free space counts). */
  limitBytes?: number;
  /** How much of the report was read so far, 0 to 1, if known: the spill is projected from it. */
  readFraction?: () => number | undefined;
  /** Free bytes in a directory (default: statfs). */
  freeBytes?: (dir: string) => Promise<number>;
}

/** Writes sorted chunks to one directory, each after checking that the whole sort will fit there. */
class Spill {
  readonly files: string[] = [];
  bytes = 0;
  private dir: string | undefined;
  private readonly root: string;
  private readonly limit: number | undefined;

  constructor(private readonly opts: SpillOptions) {
    this.root = opts.tmp ?? tmpdir();
    this.limit = opts.limitBytes ?? spillLimitBytes();
  }

  async write(chunk: InventoryEntry[], rowsSoFar: number): Promise<void> {
    this.dir ??= mkdtempSync(join(this.root, 's3eo-inventory-'));
    const body = chunk.map(encodeRow).join('');
    const size = Buffer.byteLength(body);
    await this.checkRoom(size, rowsSoFar);
    const path = join(this.dir, `chunk-${this.files.length}.jsonl`);
    try {
      await writeFile(path, body);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      throw this.tooLarge(this.bytes + size, 0, rowsSoFar, '; the disk filled up');
    }
    this.files.push(path);
    this.bytes += size;
    spilledInProcess += size;
  }

  dispose(): void {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    spilledInProcess -= this.bytes;
    this.bytes = 0;
  }

  /** Fails when what the whole report will spill (projected from the part read) exceeds the room left. */
  private async checkRoom(size: number, rows: number): Promise<void> {
    const fraction = this.opts.readFraction?.();
    const after = this.bytes + size;
    const projected = fraction !== undefined && fraction > 0 && fraction < 1 ? after / fraction : after;
    const free = await (this.opts.freeBytes ?? statfsFree)(this.dir ?? this.root);
    // The budget is the process's: other sorts running now have taken their part of it.
    const left = Math.min(free, this.limit !== undefined ? this.limit - spilledInProcess : Infinity);
    if (projected - this.bytes > left) {
      const read = fraction !== undefined ? `, ${(100 * fraction).toFixed(1)}% of the report read` : '';
      throw this.tooLarge(projected, left, rows, read);
    }
  }

  private tooLarge(needed: number, left: number, rows: number, why: string): JobError {
    const limit = this.limit !== undefined ? `S3EO_SPILL_LIMIT_MIB=${this.limit / MIB}` : 'no S3EO_SPILL_LIMIT_MIB set';
    return new JobError(
      SPILL_SPACE_EXHAUSTED,
      `sorting the inventory needs about ${mib(needed)} MiB of spill space in ${this.root} (${rows} rows so far${why}), ` +
        `only ${mib(Math.max(0, left))} MiB are left there (${limit}): give the spill more room (Helm value ` +
        `inventorySpill.sizeMiB, or a larger volume at TMPDIR and S3EO_SPILL_LIMIT_MIB), or split the job by prefix`,
    );
  }
}

/** A min-heap of the chunks' current heads. */
class Heads {
  private readonly items: { entry: InventoryEntry; source: AsyncGenerator<InventoryEntry> }[] = [];

  get size(): number {
    return this.items.length;
  }

  push(item: { entry: InventoryEntry; source: AsyncGenerator<InventoryEntry> }): void {
    const a = this.items;
    a.push(item);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (byKey(a[i]!.entry, a[p]!.entry) >= 0) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): { entry: InventoryEntry; source: AsyncGenerator<InventoryEntry> } | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && byKey(a[l]!.entry, a[m]!.entry) < 0) m = l;
        if (r < a.length && byKey(a[r]!.entry, a[m]!.entry) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Reads every entry of `input` and returns them sorted by key. `chunkSize`
 * entries at most are held in memory; more are spilled (SpillOptions), and a
 * sort that would not fit there throws JobError SpillSpaceExhausted.
 */
export async function sortEntries(
  input: AsyncIterable<InventoryEntry>,
  opts: { chunkSize?: number } & SpillOptions = {},
): Promise<SortedEntries> {
  const chunkSize = Math.max(1, opts.chunkSize ?? 100_000);
  const spill = new Spill(opts);
  const files = spill.files;
  let chunk: InventoryEntry[] = [];
  let seen = 0;
  const dispose = (): void => spill.dispose();
  try {
    for await (const e of input) {
      chunk.push(e);
      seen++;
      if (chunk.length >= chunkSize) {
        chunk.sort(byKey);
        await spill.write(chunk, seen);
        chunk = [];
      }
    }
  } catch (err) {
    dispose();
    throw err;
  }
  chunk.sort(byKey);
  const memory = chunk;

  async function* merged(): AsyncGenerator<InventoryEntry> {
    const heads = new Heads();
    const sources = [
      ...files.map((f) => readChunk(f)),
      // eslint-disable-next-line @typescript-eslint/require-await -- the in-memory chunk has nothing to wait for
      (async function* () {
        yield* memory;
      })(),
    ];
    for (const source of sources) {
      const first = await source.next();
      if (!first.done) heads.push({ entry: first.value, source });
    }
    let last: string | undefined;
    try {
      while (heads.size > 0) {
        const top = heads.pop()!;
        if (last === undefined || top.entry.key !== last) {
          last = top.entry.key;
          yield top.entry;
        }
        const next = await top.source.next();
        if (!next.done) heads.push({ entry: next.value, source: top.source });
      }
    } finally {
      await Promise.all(sources.map((s) => s.return(undefined)));
    }
  }

  // Exact in memory; with spilled chunks a key listed twice is counted twice (a total for display only).
  const count = files.length === 0 ? memory.filter((e, i) => i === 0 || e.key !== memory[i - 1]!.key).length : seen;
  return { count, spilledBytes: spill.bytes, entries: merged, dispose };
}
