// The one wrapper that tries a step again through transient errors: the tries
// are data (attempt n, since, reason), the step is never re-entered by itself.
import { describe, expect, it } from 'vitest';
import { isTransient, needsSecondOpinion, TransientError } from '../../src/engine/s3/errors.js';
import { tryThroughTransient, type Attempt } from '../../src/engine/s3/transient-retry.js';

const slowDown = (): Error => Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown' });
const denied = (): Error => Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });

describe('tryThroughTransient', () => {
  it('tries again after a transient error, telling the step which attempt it is and why', async () => {
    const seen: Attempt[] = [];
    const tried = await tryThroughTransient((a) => {
      seen.push(a);
      return a.n === 0 ? Promise.reject(slowDown()) : Promise.resolve('done');
    });
    expect(tried).toEqual({ kind: 'done', value: 'done' });
    expect(seen.map((a) => [a.n, a.reason])).toEqual([
      [0, undefined],
      [1, 'SlowDown'],
    ]);
  });

  it('a non-transient error ends the tries at once', async () => {
    let calls = 0;
    const tried = await tryThroughTransient(() => {
      calls++;
      return Promise.reject(denied());
    });
    expect(calls).toBe(1);
    expect(tried).toMatchObject({ kind: 'failed', transient: false });
  });

  it('a transient error past the window is returned as transient (the caller defers, it does not fail)', async () => {
    const tried = await tryThroughTransient(() => Promise.reject(slowDown()), { windowMs: 0 });
    expect(tried).toMatchObject({ kind: 'failed', transient: true, attempt: { n: 0 } });
  });

  it('keepTrying false, or a stop during the backoff, ends the tries', async () => {
    expect(await tryThroughTransient(() => Promise.reject(slowDown()), { keepTrying: () => false })).toMatchObject({
      kind: 'failed',
      transient: true,
    });
    const stop = new AbortController();
    stop.abort();
    expect(await tryThroughTransient(() => Promise.reject(slowDown()), { signal: stop.signal })).toEqual({
      kind: 'stopped',
    });
  });
});

describe('error classes (issue 20)', () => {
  it('our own TransientError, or an error marked retryable, is transient (e.g. an upload record not written yet)', () => {
    expect(isTransient(new TransientError('UploadNotRecorded', 'status write failed'), 8)).toBe(true);
    expect(isTransient(Object.assign(new Error('x'), { retryable: true }), 8)).toBe(true);
    expect(isTransient(denied(), 8)).toBe(false);
  });

  it('only a signature mismatch needs a second opinion before it ends the job', () => {
    expect(needsSecondOpinion(Object.assign(new Error('x'), { name: 'SignatureDoesNotMatch' }))).toBe(true);
    expect(needsSecondOpinion(Object.assign(new Error('x'), { name: 'InvalidAccessKeyId' }))).toBe(false);
  });
});
