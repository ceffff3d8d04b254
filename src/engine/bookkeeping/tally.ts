// Counting outcomes. A run keeps two tallies: every object it finished, in
// whatever order they finish (what progress, metrics and the final counters
// show), and the objects at or below the checkpoint (what a resumed run takes
// as its base). They differ by the finished objects above the checkpoint, which
// a resumed run looks at again.
import { emptyCounters, type Counters, type Outcome, type SkipReason } from '../types.js';

export type SkipCounts = Record<SkipReason, number>;

export interface Planned {
  objects: number;
  bytes: number;
  byMethod: Record<string, number>;
}

export class Tally {
  readonly counters: Counters = emptyCounters();
  readonly skippedByReason: SkipCounts = { archived: 0, filtered: 0, vanished: 0, unsupported: 0 };
  readonly planned: Planned = { objects: 0, bytes: 0, byMethod: {} };

  add(outcome: Outcome): void {
    this.counters.scanned++;
    switch (outcome.kind) {
      case 'encrypted':
        this.counters.encrypted++;
        this.counters.bytesEncrypted += outcome.bytes;
        break;
      case 'wouldEncrypt':
        this.planned.objects++;
        this.planned.bytes += outcome.bytes;
        this.planned.byMethod[outcome.method] = (this.planned.byMethod[outcome.method] ?? 0) + 1;
        break;
      case 'alreadyEncrypted':
        this.counters.alreadyEncrypted++;
        break;
      case 'skipped':
        this.counters.skipped++;
        this.skippedByReason[outcome.reason]++;
        break;
      case 'failed':
        this.counters.failed++;
        break;
    }
  }

  copyCounters(): Counters {
    return { ...this.counters };
  }

  copySkips(): SkipCounts {
    return { ...this.skippedByReason };
  }

  copyPlanned(): Planned {
    return { ...this.planned, byMethod: { ...this.planned.byMethod } };
  }
}
