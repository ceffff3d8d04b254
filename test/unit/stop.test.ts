import { describe, expect, it } from 'vitest';
import { sleep, untilSettledOrAborted } from '../../src/engine/s3/abortable.js';
import { Budget } from '../../src/engine/bookkeeping/budget.js';
import { Tally } from '../../src/engine/bookkeeping/tally.js';
import { OpenUploads } from '../../src/engine/object/uploads.js';

describe('waits a stop cuts short', () => {
  it('untilSettledOrAborted ends at the abort even if the promise never settles', async () => {
    const stop = new AbortController();
    const waiting = untilSettledOrAborted(new Promise(() => undefined), stop.signal);
    setTimeout(() => stop.abort(), 10);
    await expect(waiting).resolves.toBeUndefined();
  });
  it('sleep ends at the abort', async () => {
    const stop = new AbortController();
    const t = performance.now();
    setTimeout(() => stop.abort(), 10);
    await sleep(60_000, stop.signal);
    expect(performance.now() - t).toBeLessThan(5_000);
  });
  it('a budget waiter gives up at the abort without taking a slot; the slot goes to the next waiter', async () => {
    const b = new Budget(1);
    expect(await b.acquire()).toBe(true);
    const stop = new AbortController();
    const stopped = b.acquire(stop.signal);
    const next = b.acquire();
    stop.abort();
    expect(await stopped).toBe(false);
    b.release();
    expect(await next).toBe(true);
    expect(b.inFlight).toBe(1);
  });
});

describe('Tally and OpenUploads', () => {
  it('counts outcomes by kind', () => {
    const t = new Tally();
    t.add({ kind: 'encrypted', method: 'copy', bytes: 10 });
    t.add({ kind: 'alreadyEncrypted' });
    t.add({ kind: 'skipped', reason: 'archived' });
    t.add({ kind: 'failed', failure: { key: 'k', operation: 'CopyObject', code: 'X', message: 'm' } });
    expect(t.copyCounters()).toEqual({
      scanned: 4,
      encrypted: 1,
      alreadyEncrypted: 1,
      skipped: 1,
      failed: 1,
      bytesEncrypted: 10,
    });
    expect(t.copySkips().archived).toBe(1);
  });
  it('records every opened upload (awaited) and the list without the closed ones', async () => {
    const records: string[][] = [];
    const u = new OpenUploads([{ key: 'old', uploadId: 'u0' }], async (open) => {
      await sleep(5);
      records.push(open.map((x) => x.uploadId));
    });
    await u.opened({ key: 'a', uploadId: 'u1' });
    expect(records).toEqual([['u0', 'u1']]);
    u.closed({ key: 'old', uploadId: 'u0' });
    await sleep(20);
    expect(records.at(-1)).toEqual(['u1']);
    expect(u.list()).toEqual([{ key: 'a', uploadId: 'u1' }]);
  });
});
