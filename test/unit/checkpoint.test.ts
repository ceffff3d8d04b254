import { describe, expect, it } from 'vitest';
import { resumePoint, selectionFingerprint } from '../../src/controller/checkpoint.js';
import { add, addCommitted, dryRunCostUSD } from '../../src/controller/jobrun.js';
import type { EncryptionJob, EncryptionJobSpec } from '../../src/controller/api.js';
import { ZERO_PROGRESS } from '../../src/controller/checkpoint.js';
import { estimateCost } from '../../src/engine/index.js';
import type { Progress } from '../../src/engine/index.js';

const spec: EncryptionJobSpec = { bucket: 'b', prefix: 'p/', encryption: { type: 'AES256' }, concurrency: 4 };
const counters = { scanned: 60, encrypted: 50, alreadyEncrypted: 10, skipped: 0, failed: 0, bytesEncrypted: 500 };

function job(s: EncryptionJobSpec, status: EncryptionJob['status'], generation = 2): EncryptionJob {
  return {
    apiVersion: 's3encryption.dev/v1alpha1',
    kind: 'EncryptionJob',
    metadata: { name: 'j', namespace: 'n', generation },
    spec: s,
    status,
  };
}

describe('the checkpoint belongs to the spec that made it', () => {
  const fp = selectionFingerprint(spec);
  const saved = { startAfter: 'p/0059', spec: fp, progress: counters };

  it('resumes when only concurrency, suspend, rate, report or maxObjects changed', () => {
    for (const change of [
      { concurrency: 64 },
      { suspend: false },
      { maxRequestsPerSecond: 5 },
      { report: { destination: 's3://b/r.csv' } },
      { maxObjects: 100 },
    ]) {
      const r = resumePoint(job({ ...spec, ...change }, { observedGeneration: 1, checkpoint: saved }));
      expect(r.startAfter).toBe('p/0059');
      expect(r.base).toEqual(counters);
      expect(r.restartReason).toBeUndefined();
    }
  });

  it('lists from the beginning when what is eligible or what is done to it changed', () => {
    for (const change of [
      { include: ['*.json'] },
      { exclude: ['tmp/*'] },
      { method: 'Copy' as const },
      { storageClass: 'STANDARD_IA' },
      { encryption: { type: 'aws:kms' as const } },
      { encryption: { type: 'AES256' as const, bucketKeyEnabled: true } },
      { prefix: 'q/' },
    ]) {
      const r = resumePoint(job({ ...spec, ...change }, { observedGeneration: 1, checkpoint: saved }));
      expect(r.startAfter, JSON.stringify(change)).toBeUndefined();
      expect(r.base.scanned).toBe(0);
      expect(r.restartReason).toMatch(/beginning/);
    }
  });

  it('a dry run uses its own checkpoint and never the real one, and back', () => {
    const dry = resumePoint(job({ ...spec, dryRun: true }, { checkpoint: saved }));
    expect(dry.startAfter).toBeUndefined();
    const dryCp = { startAfter: 'p/0009', spec: fp, progress: { ...counters, scanned: 10, wouldEncrypt: 10 } };
    const dryResumed = resumePoint(
      job(
        { ...spec, dryRun: true },
        { checkpoint: saved, dryRunCheckpoint: dryCp, progress: { ...counters, scanned: 10 } },
      ),
    );
    expect(dryResumed.startAfter).toBe('p/0009');
    expect(dryResumed.base.wouldEncrypt).toBe(10);
    // Back to real: the real checkpoint and its own counters, not the dry run's shown in status.progress.
    const real = resumePoint(
      job(spec, {
        checkpoint: saved,
        dryRunCheckpoint: dryCp,
        progress: { ...counters, scanned: 10, wouldEncrypt: 10 },
      }),
    );
    expect(real.startAfter).toBe('p/0059');
    expect(real.base).toEqual(counters);
  });

  it('maxObjects counts over the checkpoint: a resumed run gets what is left', () => {
    expect(resumePoint(job({ ...spec, maxObjects: 100 }, { checkpoint: saved })).maxObjects).toBe(40);
    expect(resumePoint(job({ ...spec, maxObjects: 60 }, { checkpoint: saved })).maxObjects).toBe(0);
    expect(resumePoint(job({ ...spec, maxObjects: 100 }, {})).maxObjects).toBe(100);
  });

  it('a checkpoint from before fingerprints is trusted only for the generation that made it', () => {
    const legacy = { startAfter: 'p/0059' };
    expect(resumePoint(job(spec, { observedGeneration: 2, checkpoint: legacy, progress: counters })).startAfter).toBe(
      'p/0059',
    );
    expect(resumePoint(job(spec, { observedGeneration: 2, checkpoint: legacy, progress: counters })).base.scanned).toBe(
      60,
    );
    expect(
      resumePoint(job(spec, { observedGeneration: 1, checkpoint: legacy, progress: counters })).startAfter,
    ).toBeUndefined();
  });
});

describe('the counters saved with a checkpoint (addCommitted)', () => {
  const committed = {
    counters: { scanned: 30, encrypted: 0, alreadyEncrypted: 10, skipped: 0, failed: 0, bytesEncrypted: 0 },
    skippedByReason: { archived: 0, filtered: 0, vanished: 0, unsupported: 0 },
    planned: { objects: 20, bytes: 2000, byMethod: { copy: 20 } },
  };
  it("a dry run's what-would-change adds to the base's, so a resume keeps it", () => {
    const base = { ...counters, encrypted: 0, alreadyEncrypted: 10, wouldEncrypt: 50, wouldEncryptBytes: 5000 };
    const out = addCommitted(base, committed, true);
    expect(out.scanned).toBe(90);
    expect(out.wouldEncrypt).toBe(70);
    expect(out.wouldEncryptBytes).toBe(7000);
    // And what a resumed dry run reads back from that checkpoint as its base.
    const resumed = resumePoint(
      job(
        { ...spec, dryRun: true },
        { dryRunCheckpoint: { startAfter: 'p/k', spec: selectionFingerprint(spec), progress: out } },
      ),
    );
    expect(resumed.base.wouldEncrypt).toBe(70);
    expect(resumed.base.wouldEncryptBytes).toBe(7000);
  });
  it('a real run saves no what-would-change counts', () => {
    const out = addCommitted({ ...counters }, committed, false);
    expect(out.scanned).toBe(90);
    expect(out.wouldEncrypt).toBeUndefined();
    expect(out.wouldEncryptBytes).toBeUndefined();
  });
});

describe('the estimated cost of a resumed dry run (dryRunCostUSD)', () => {
  // SSE-KMS without a bucket key: one KMS request per object written, so every object counts.
  const plan = { target: { type: 'aws:kms' as const }, multipartPartSize: 1024 ** 3 };
  /** What a dry run reports of a stretch of the bucket (a Progress, as the engine hands it over). */
  function stretch(scanned: number, filtered: number, copy: number, multipart: number, bytes: number): Progress {
    const planned = { objects: copy + multipart, bytes, byMethod: { copy, 'multipart-copy': multipart } };
    const c = { scanned, encrypted: 0, alreadyEncrypted: scanned - filtered - copy - multipart, skipped: filtered };
    const counters = { ...c, failed: 0, bytesEncrypted: 0 };
    const skippedByReason = { archived: 0, filtered, vanished: 0, unsupported: 0 };
    return {
      counters,
      skippedByReason,
      committed: { counters, skippedByReason, planned },
      openUploads: [],
      planned,
      requests: {},
      recentFailures: [],
      inFlight: 0,
    };
  }
  // One uninterrupted dry run of 1,500 objects, and the same bucket as 700 objects under the
  // checkpoint of a stopped run plus the 800 after it, done by the run resumed from it.
  const whole = stretch(1500, 30, 1000, 20, 40 * 1024 ** 3);
  const underCheckpoint = stretch(700, 10, 480, 8, 15 * 1024 ** 3);
  const afterCheckpoint = stretch(800, 20, 520, 12, 25 * 1024 ** 3);
  const uninterrupted = estimateCost(plan, { scanned: 1500, filtered: 30, planned: whole.planned }).usd;

  it('is made from the totals of the whole bucket, the objects under the checkpoint included', () => {
    const saved = addCommitted({ ...ZERO_PROGRESS }, underCheckpoint.committed, true);
    expect(saved.wouldEncryptByMethod).toEqual({ copy: 480, 'multipart-copy': 8 });
    // Saved with the checkpoint and read back by the resumed run as its base, as JSON in the status.
    const resumed = resumePoint(
      job(
        { ...spec, dryRun: true },
        { dryRunCheckpoint: { startAfter: 'p/k', spec: selectionFingerprint(spec), progress: structuredClone(saved) } },
      ),
    );
    const total = add(resumed.base, afterCheckpoint, true);
    expect(total.scanned).toBe(1500);
    expect(total.wouldEncryptByMethod).toEqual({ copy: 1000, 'multipart-copy': 20 });
    expect(dryRunCostUSD(plan, total)).toBe(uninterrupted);
    expect(dryRunCostUSD(plan, total).toFixed(4)).toBe(uninterrupted.toFixed(4));
  });

  it("is not the resumed run's own estimate, nor the sum of the runs' estimates", () => {
    const own = (p: Progress): number =>
      estimateCost(plan, { scanned: p.counters.scanned, filtered: p.skippedByReason.filtered, planned: p.planned }).usd;
    // What status.estimatedCostUSD said before: the objects under the checkpoint were left out.
    expect(own(afterCheckpoint)).toBeLessThan(uninterrupted);
    // Adding the runs' estimates counts the last LIST page of each run: more than one run sends.
    expect(own(underCheckpoint) + own(afterCheckpoint)).toBeGreaterThan(uninterrupted);
  });

  it('a run that is not a dry run saves no what-would-change by method', () => {
    expect(addCommitted({ ...ZERO_PROGRESS }, underCheckpoint.committed, false).wouldEncryptByMethod).toBeUndefined();
  });
});
