// Conditions in the metav1.Condition shape: lastTransitionTime moves only when
// the status flips, like every well-behaved controller. Complete, Failed and
// Suspended exclude each other, and one that is False says which state the job
// is in (never a stale "Running" on a finished job). Reconciling and Stalled,
// the conditions kstatus reads (Flux wait/healthChecks, kpt, cli-utils), follow
// from the batch/v1 Job ones: setCondition keeps them in step, so no runner can
// forget them.
import type { Condition, ConditionType, JobProgress } from './api.js';
import { WORKERS_NOT_STARTING } from './worker-health.js';

type NewCondition = Omit<Condition, 'lastTransitionTime'>;

/** The states that end or pause a run, and the word the other two say while one of them holds. */
const END_STATES: readonly { type: ConditionType; word: string }[] = [
  { type: 'Complete', word: 'Completed' },
  { type: 'Failed', word: 'Failed' },
  { type: 'Suspended', word: 'Suspended' },
];

function put(conditions: Condition[] | undefined, next: NewCondition, now: Date): Condition[] {
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

export function setCondition(
  conditions: Condition[] | undefined,
  next: NewCondition,
  now: Date = new Date(),
): Condition[] {
  let list = put(conditions, next, now);
  if (next.type === 'Reconciling' || next.type === 'Stalled') return list;
  const gen = next.observedGeneration;
  const ended = END_STATES.find((s) => s.type === next.type);
  if (ended && next.status === 'True') {
    for (const other of END_STATES.filter((s) => s.type !== next.type)) {
      list = put(
        list,
        { type: other.type, status: 'False', reason: ended.word, message: '', observedGeneration: gen },
        now,
      );
    }
  }
  return withHealth(list, gen, now);
}

/**
 * Reconciling and Stalled as kstatus reads them: a Failed job is Stalled (kstatus: Failed), a job on its
 * way (running, retrying, planning, waiting for its Secret) is Reconciling (InProgress), and a Complete
 * or Suspended one is neither (Current).
 */
function withHealth(conditions: Condition[], gen: number | undefined, now: Date): Condition[] {
  const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
  const done = END_STATES.find((s) => conditions.some((c) => c.type === s.type && c.status === 'True'));
  const progressing = conditions.find((c) => c.type === 'Progressing');
  const on = (type: ConditionType, status: 'True' | 'False', reason: string, message: string): NewCondition => ({
    type,
    status,
    reason,
    message,
    ...(gen !== undefined ? { observedGeneration: gen } : {}),
  });
  let reconciling: NewCondition;
  let stalled: NewCondition;
  if (failed) {
    reconciling = on('Reconciling', 'False', 'Failed', '');
    stalled = on('Stalled', 'True', failed.reason, failed.message);
  } else if (done) {
    reconciling = on('Reconciling', 'False', done.word, '');
    stalled = on('Stalled', 'False', done.word, '');
  } else {
    // What it is doing (Encrypting, Retrying, SecretNotFound...): the Progressing reason.
    const doing = progressing?.reason ?? 'Pending';
    reconciling = on('Reconciling', 'True', doing, progressing?.message ?? '');
    // Worker pods that cannot start wait on a person (a quota, a pull secret): kstatus Failed, like a
    // Deployment past its progress deadline, while the run goes on trying (Reconciling stays True).
    const blocked = progressing?.status === 'False' && progressing.reason === WORKERS_NOT_STARTING;
    stalled = on('Stalled', blocked ? 'True' : 'False', doing, blocked ? progressing.message : '');
  }
  return put(put(conditions, reconciling, now), stalled, now);
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
