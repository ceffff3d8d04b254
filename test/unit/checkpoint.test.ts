import { describe, expect, it } from 'vitest';
import {
  resumePoint,
  runFingerprint,
  selectionFingerprint,
  selectionFingerprintV1,
} from '../../src/controller/checkpoint.js';
import { planFitsSelection, resumeShards } from '../../src/controller/shardplan.js';
import { add, addCommitted, dryRunCostUSD } from '../../src/controller/jobrun.js';
import type { EncryptionJob, EncryptionJobSpec, ShardStatus } from '../../src/controller/api.js';
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

describe('scenario 1: a new or removed inventory is a new selection; a finished run is resumed only for a change of pace', () => {
  const inv = (manifest: string): EncryptionJobSpec => ({ ...spec, source: { inventory: { manifest } } });
  const m1 = 's3://inv/b/m1/manifest.json';
  const m2 = 's3://inv/b/m2/manifest.json';

  it('the fingerprint carries its version and the source', () => {
    expect(selectionFingerprint(spec)).toMatch(/^v2:[0-9a-f]{16}$/);
    expect(selectionFingerprint(inv(m1))).not.toBe(selectionFingerprint(spec));
    expect(selectionFingerprint(inv(m1))).not.toBe(selectionFingerprint(inv(m2)));
    // Field order does not matter.
    expect(selectionFingerprint({ encryption: { type: 'AES256' }, prefix: 'p/', bucket: 'b' })).toBe(
      selectionFingerprint(spec),
    );
  });

  it('a new manifest, or none, lists from the beginning (a checkpoint of a LIST run and of an inventory run)', () => {
    const fromM1 = { startAfter: 'p/j', spec: selectionFingerprint(inv(m1)), progress: counters };
    for (const next of [inv(m2), spec]) {
      const r = resumePoint(job(next, { observedGeneration: 1, checkpoint: fromM1 }));
      expect(r.startAfter).toBeUndefined();
      expect(r.restartReason).toMatch(/selection or the target changed/);
    }
    const fromList = { startAfter: 'p/j', spec: selectionFingerprint(spec), progress: counters };
    expect(resumePoint(job(inv(m1), { observedGeneration: 1, checkpoint: fromList })).startAfter).toBeUndefined();
  });

  it('a finished run is resumed by a change of pace only; any other edit lists from the beginning', () => {
    const done = {
      startAfter: 'p/j',
      spec: selectionFingerprint(spec),
      progress: counters,
      completedFor: runFingerprint(spec),
    };
    const status = { observedGeneration: 1, phase: 'Complete' as const, checkpoint: done };
    for (const change of [
      { concurrency: 64 },
      { suspend: false },
      { maxRequestsPerSecond: 5 },
      { report: { destination: 's3://b/r.csv' } },
      { maxObjects: 100 },
    ])
      expect(resumePoint(job({ ...spec, ...change }, status)).startAfter, JSON.stringify(change)).toBe('p/j');
    for (const change of [
      { connection: { credentialsSecretRef: { name: 'other' } } },
      { connection: { region: 'eu-west-1' } },
      { parallelism: 2 },
    ]) {
      const r = resumePoint(job({ ...spec, ...change }, status));
      expect(r.startAfter, JSON.stringify(change)).toBeUndefined();
      expect(r.restartReason).toMatch(/had finished/);
    }
    // A checkpoint of a run that did not finish is resumed after such an edit (its keys are done).
    const partial = { ...status, phase: 'Suspended' as const, checkpoint: { ...done, completedFor: null } };
    expect(resumePoint(job({ ...spec, connection: { region: 'eu-west-1' } }, partial)).startAfter).toBe('p/j');
  });

  it('upgrade: a checkpoint of the unversioned fingerprint (version 1) is read with the function of its time', () => {
    // The values an operator at 0f098c3 wrote for these specs.
    expect(selectionFingerprintV1(spec)).toBe('b6f02ba6dc69bd96');
    const full: EncryptionJobSpec = {
      bucket: 'b',
      prefix: 'p/',
      encryption: { type: 'aws:kms', kmsKeyId: 'alias/k', bucketKeyEnabled: true },
      include: ['*.json'],
      exclude: ['tmp/*'],
      method: 'Copy',
      storageClass: 'STANDARD_IA',
      connection: { endpoint: 'http://e', supportsUpdateObjectEncryption: true },
      source: { inventory: { manifest: 's3://i/m.json' } },
    };
    expect(selectionFingerprintV1(full)).toBe('ab5560e4213d04c7');
    const old = { startAfter: 'p/0059', spec: 'b6f02ba6dc69bd96', progress: counters };
    // Unchanged spec (the same generation, an operator restart after the upgrade): resumed.
    const same = resumePoint(job(spec, { observedGeneration: 2, phase: 'Running', checkpoint: old }));
    expect(same).toMatchObject({ startAfter: 'p/0059', base: counters });
    // Suspended before the upgrade, resumed after it: resumed.
    expect(resumePoint(job(spec, { observedGeneration: 1, phase: 'Suspended', checkpoint: old })).startAfter).toBe(
      'p/0059',
    );
    // Another selection: from the beginning, as before.
    expect(resumePoint(job({ ...spec, prefix: 'q/' }, { observedGeneration: 1, checkpoint: old })).startAfter).toBe(
      undefined,
    );
    // Version 1 did not hash the source: the report the run read (status.inventory) tells.
    const oldInv = { startAfter: 'p/0059', spec: selectionFingerprintV1(inv(m1)), progress: counters };
    const read = (manifest: string) => ({ manifest });
    expect(
      resumePoint(job(inv(m1), { observedGeneration: 1, inventory: read(m1), checkpoint: oldInv })).startAfter,
    ).toBe('p/0059');
    expect(
      resumePoint(job(inv(m2), { observedGeneration: 1, inventory: read(m1), checkpoint: oldInv })).startAfter,
    ).toBeUndefined();
    expect(resumePoint(job(spec, { observedGeneration: 1, inventory: read(m1), checkpoint: oldInv })).startAfter).toBe(
      undefined,
    );
    // A finished job of the old operator edited after the upgrade: nothing tells what changed, so it starts over.
    const r = resumePoint(
      job({ ...spec, concurrency: 8 }, { observedGeneration: 1, phase: 'Complete', checkpoint: old }),
    );
    expect(r.startAfter).toBeUndefined();
    expect(r.restartReason).toMatch(/earlier operator version/);
    // A version this operator does not know (a downgrade): from the beginning, said so.
    const future = resumePoint(
      job(spec, { observedGeneration: 2, checkpoint: { ...old, spec: 'v3:0123456789abcdef' } }),
    );
    expect(future.startAfter).toBeUndefined();
    expect(future.restartReason).toMatch(/another version of the operator \(fingerprint v3\)/);
  });

  it('shards: a plan of a finished run of another spec runs every shard from its start; a change of pace resumes', () => {
    const shards: ShardStatus[] = [
      { index: 0, startAfter: '', endAt: 'p/m', phase: 'Complete', checkpoint: 'p/m', progress: counters },
      {
        index: 1,
        startAfter: 'p/m',
        phase: 'Complete',
        checkpoint: 'p/z',
        progress: counters,
        openUploads: [{ key: 'p/x', uploadId: 'u' }],
      },
    ];
    const plan = {
      spec: selectionFingerprint(spec),
      createdAt: '2026-12-01T00:00:00Z',
      completedFor: runFingerprint(spec),
    };
    const status = { observedGeneration: 1, phase: 'Complete' as const, shards, shardPlan: plan };
    const pace = resumeShards(job({ ...spec, concurrency: 9 }, status), shards, plan);
    expect(pace.restartReason).toBeUndefined();
    expect(pace.shards.map((s) => [s.phase, s.checkpoint])).toEqual([
      ['Pending', 'p/m'],
      ['Pending', 'p/z'],
    ]);
    const other = resumeShards(job({ ...spec, parallelism: 3 }, status), shards, plan);
    expect(other.restartReason).toMatch(/had finished/);
    expect(other.plan.completedFor).toBeNull();
    expect(other.shards).toEqual([
      { index: 0, startAfter: '', endAt: 'p/m', phase: 'Pending', progress: ZERO_PROGRESS },
      {
        index: 1,
        startAfter: 'p/m',
        phase: 'Pending',
        progress: ZERO_PROGRESS,
        openUploads: [{ key: 'p/x', uploadId: 'u' }],
      },
    ]);
    // A plan of the old operator (version-1 fingerprint) still fits its selection and is upgraded.
    const oldPlan = { spec: selectionFingerprintV1(spec), createdAt: '2026-12-01T00:00:00Z' };
    const running = { observedGeneration: 2, phase: 'Running' as const, shards, shardPlan: oldPlan };
    expect(planFitsSelection(oldPlan, job(spec, running))).toBe(true);
    expect(resumeShards(job(spec, running), shards, oldPlan).plan.spec).toBe(selectionFingerprint(spec));
  });
});
