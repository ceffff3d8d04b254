// The last step of an object's journey: recording its outcome. Counted at once
// (progress), and committed under the checkpoint in listing order (the low
// watermark) -- a failure only once the run shows it is the object's own.
import { JobError } from '../s3/errors.js';
import { Tally } from './tally.js';
import type { ObjectFailure, Outcome } from '../types.js';
import { Watermark, type Slot } from './watermark.js';

/** Give up on the job when this many objects fail before any is written. */
export const FAIL_FAST_AFTER = 25;

/** Failures held back from the checkpoint until the run shows they are the objects' own. */
interface HeldFailure {
  slot: Slot<Outcome>;
  outcome: Outcome;
}

export interface RecordOptions {
  startAfter: string | undefined;
  /** How many failures to keep for the result (all are counted). */
  maxFailuresKept: number;
  /** Each outcome as the checkpoint passes it (reports). */
  onCommit: (key: string, outcome: Outcome) => void;
  /** The run's fatal error, if it has one. */
  fatal: () => JobError | undefined;
  /** Ends the run: the failures add up to a fail-fast. */
  fail: (err: JobError) => void;
}

export class RunRecord {
  /** Every finished object (progress), and those under the checkpoint (the base a resumed run adds to). */
  readonly done = new Tally();
  readonly committed = new Tally();
  readonly recentFailures: ObjectFailure[] = [];
  readonly watermark: Watermark<Outcome>;
  /** Objects this run wrote (or, dry, would write): the only proof that failures are the objects' own. */
  private writes = 0;
  private failedBeforeWrite = 0;
  /** Failures finished before the first write: not under the checkpoint until a write (or the end) shows they are the objects' own. */
  private held: HeldFailure[] = [];

  constructor(private readonly opts: RecordOptions) {
    // Reports get outcomes as the checkpoint passes them, like the saved counters: the
    // report of a stopped run and of its resumed run together name every key once.
    this.watermark = new Watermark<Outcome>(opts.startAfter, (key, outcome) => {
      this.committed.add(outcome);
      opts.onCommit(key, outcome);
    });
  }

  /** Registers a key in listing order. */
  begin(key: string): Slot<Outcome> {
    return this.watermark.begin(key);
  }

  /**
   * An object is done: count it now (progress), and under the checkpoint once
   * every key before it is done. A failure goes under the checkpoint only when
   * it is the object's own: once the run has a fatal error (bad credentials,
   * an unusable target key, a fail-fast), a failure may be that error's, so it
   * stays above the checkpoint and a resumed run, after the cause is fixed,
   * tries the object again. Failures before the first write are held back
   * for the same reason: if they add up to a fail-fast, the run keeps the
   * checkpoint it started from; a write (or the end of the run) releases them.
   * Only a write proves that writes work: a filtered, skipped or already
   * encrypted object says nothing about a denied PutObject or KMS key.
   */
  finished(slot: Slot<Outcome>, outcome: Outcome): void {
    this.count(outcome);
    if (outcome.kind === 'failed') {
      if (this.opts.fatal()) return;
      if (this.writes === 0) {
        this.held.push({ slot, outcome });
        return;
      }
    }
    if (this.writes > 0) this.releaseHeld();
    this.watermark.finish(slot, outcome);
  }

  /** The held failures go under the checkpoint: a write, or a run that ended without one and without a fatal error. */
  releaseHeld(): void {
    if (this.opts.fatal()) return; // a write in flight when the run failed proves nothing about the held failures
    const held = this.held;
    this.held = [];
    for (const h of held) this.watermark.finish(h.slot, h.outcome);
  }

  private count(outcome: Outcome): void {
    this.done.add(outcome);
    if (outcome.kind === 'failed') {
      if (this.recentFailures.length >= this.opts.maxFailuresKept) this.recentFailures.shift();
      this.recentFailures.push(outcome.failure);
    }
    if (outcome.kind === 'encrypted' || outcome.kind === 'wouldEncrypt') this.writes++;
    if (outcome.kind !== 'failed' || this.writes > 0) return;
    this.failedBeforeWrite++;
    if (this.failedBeforeWrite >= FAIL_FAST_AFTER && !this.opts.fatal()) {
      const f = outcome.failure;
      this.opts.fail(
        new JobError(
          f.code === 'AccessDenied' ? 'AccessDenied' : 'TooManyFailures',
          `${this.failedBeforeWrite} objects failed before any was written; last: ${f.operation} ${f.key}: ${f.code}: ${f.message}`,
        ),
      );
    }
  }
}
