import { describe, expect, it } from 'vitest';
import { resumePoint, selectionFingerprint } from '../../src/controller/checkpoint.js';
import { addCommitted } from '../../src/controller/jobrun.js';
import type { EncryptionJob, EncryptionJobSpec } from '../../src/controller/api.js';

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
