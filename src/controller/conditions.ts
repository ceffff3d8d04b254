// Conditions in the metav1.Condition shape: lastTransitionTime moves only when
// the status flips, like every well-behaved controller.
import type { Condition, ConditionType, JobProgress } from './api.js';

export function setCondition(
  conditions: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date = new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const prev = i >= 0 ? list[i] : undefined;
  const lastTransitionTime =
    prev && prev.status === next.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const cond: Condition = { ...next, lastTransitionTime };
  if (i >= 0) list[i] = cond;
  else list.push(cond);
  return list;
}

export function findCondition(conditions: Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: Condition[] | undefined, type: ConditionType): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/** How a run that reached the end says so; the three runners differ only in these. */
export interface Completion {
  progress: JobProgress;
  dryRun: boolean;
  /** Where the work ran, said after the counts, e.g. "in 4 shards"; none for an unsharded run. */
  where?: string;
  /** Said after the counts and `where`, e.g. that spec.maxObjects was reached. */
  note?: string;
  /** Bookkeeping that failed after the work: said, and does not undo Complete. */
  warnings: readonly string[];
  /** Where a user reads which objects failed (the Complete message points there when some did). */
  failuresAt: string;
  generation: number;
}

export interface CompletedStatus {
  conditions: Condition[];
  /** The Progressing message, also the Completed event's. */
  message: string;
  /** In order: one CompletedWithWarning per warning, then Completed. */
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
}

/**
 * The conditions and events of a run that reached the end: Progressing False/Completed and
 * Complete True, with DryRunCompleted or CompletedWithFailures when they apply. Pure, so the
 * unsharded, sharded and worker runs cannot drift apart in what a finished job says.
 */
export function completedStatus(conditions: Condition[] | undefined, c: Completion, now?: Date): CompletedStatus {
  const p = c.progress;
  const failed = p.failed;
  let message = c.dryRun
    ? `dry run: ${p.wouldEncrypt ?? 0} of ${p.scanned} objects would change (${p.wouldEncryptBytes ?? 0} bytes, about $${p.estimatedCostUSD ?? '0'})`
    : `${p.encrypted} encrypted, ${p.alreadyEncrypted} already encrypted, ${p.skipped} skipped, ${failed} failed of ${p.scanned} objects`;
  if (c.where) message += ` ${c.where}`;
  if (c.note) message += ` ${c.note}`;
  if (c.warnings.length > 0) message += `; warning: ${c.warnings.join('; ')}`;
  let list = setCondition(
    conditions,
    { type: 'Progressing', status: 'False', reason: 'Completed', message, observedGeneration: c.generation },
    now,
  );
  list = setCondition(
    list,
    {
      type: 'Complete',
      status: 'True',
      reason: c.dryRun ? 'DryRunCompleted' : failed > 0 ? 'CompletedWithFailures' : 'Completed',
      message: failed > 0 ? `${message}; see ${c.failuresAt}` : message,
      observedGeneration: c.generation,
    },
    now,
  );
  const events: CompletedStatus['events'] = c.warnings.map((w) => ({
    type: 'Warning',
    reason: 'CompletedWithWarning',
    message: w,
  }));
  events.push({ type: failed > 0 ? 'Warning' : 'Normal', reason: 'Completed', message });
  return { conditions: list, message, events };
}
