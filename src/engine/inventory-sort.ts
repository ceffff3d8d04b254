// Putting inventory rows into S3's key order. The watermark checkpoint needs the
// keys of a run in the order S3 lists them (compareKeys), and S3 Inventory does
// not promise any order across or within its data files. So the rows are read
// in full first (which also checks every file's MD5 before any object is
// touched), sorted in chunks of fixed size, chunks beyond the first spilled to
// a temporary directory, and merged. Memory holds one chunk, however large the
// inventory. A key listed twice (two rows for one key) is yielded once.
import { createReadStream, createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import type { InventoryEntry } from './inventory.js';
import { compareKeys } from './shards.js';

export interface SortedEntries {
  /** Keys (distinct when they fit in one chunk). */
  readonly count: number;
  /** The entries in S3's key order; call once. */
  entries(): AsyncGenerator<InventoryEntry>;
  /** Removes the spilled chunks (also when entries() was never read to its end). */
  dispose(): void;
}

const byKey = (a: InventoryEntry, b: InventoryEntry): number => compareKeys(a.key, b.key);

async function writeChunk(path: string, chunk: InventoryEntry[]): Promise<void> {
  const out: WriteStream = createWriteStream(path);
  for (const e of chunk) {
    if (!out.write(`${JSON.stringify(e)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
}

async function* readChunk(path: string): AsyncGenerator<InventoryEntry> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  try {
    for await (const line of lines) if (line) yield JSON.parse(line) as InventoryEntry;
  } finally {
    lines.close();
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
 * entries at most are held in memory; more are spilled to `tmp` (default: the
 * system's temporary directory).
 */
export async function sortEntries(
  input: AsyncIterable<InventoryEntry>,
  opts: { chunkSize?: number; tmp?: string } = {},
): Promise<SortedEntries> {
  const chunkSize = Math.max(1, opts.chunkSize ?? 100_000);
  let dir: string | undefined;
  const files: string[] = [];
  let chunk: InventoryEntry[] = [];
  let seen = 0;
  const spill = async (): Promise<void> => {
    dir ??= mkdtempSync(join(opts.tmp ?? tmpdir(), 's3eo-inventory-'));
    const path = join(dir, `chunk-${files.length}.jsonl`);
    chunk.sort(byKey);
    await writeChunk(path, chunk);
    files.push(path);
    chunk = [];
  };
  const dispose = (): void => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    for await (const e of input) {
      chunk.push(e);
      seen++;
      if (chunk.length >= chunkSize) await spill();
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
  return { count, entries: merged, dispose };
}
