// What one worker pod of a spec.workers job does (src/worker.ts is its entry
// point): either plan the shards (the planning step, one pod: it makes the
// job's EncryptionShard objects) or run the one shard its JOB_COMPLETION_INDEX
// names, from that shard's checkpoint, with the pod's own identity (its
// ServiceAccount's, or the job's Secret as env). A shard's pod writes only its
// own EncryptionShard's status, coalesced; the operator sums the shards into the
// job. The exit code tells the Job's pod failure policy what happened
// (workerjob.ts).
import { JobError, validatePlan, type ObjectFailure, type Progress, type RunResult } from '../engine/index.js';
import type { Logger } from '../log.js';
import type { EncryptionJob, ShardStatus } from './api.js';
import { selectionFingerprint } from './checkpoint.js';
import type { KubeClient } from './kubeclient.js';
import { planFor } from './plan.js';
import { planFitsSelection, planJobShards } from './shardplan.js';
import { shardCount } from './shardrun.js';
import { ShardStore, shardStatusPatch, shardWriteIntervalMs, toShardStatus } from './shardstore.js';
import { ShardRunner, shardPlan } from './shardwork.js';
import { clip } from './tenancy.js';
import { EXIT_SHARD_FAILED, EXIT_STALE } from './workerjob.js';

/** A transient failure: the Job controller runs the index again (backoffLimitPerIndex). */
export const EXIT_RETRY = 1;
/** Stopped by SIGTERM (pod deleted, suspend, spec change): the checkpoint is saved; the index runs again if the Job stays. */
export const EXIT_STOPPED = 143;

export interface WorkerArgs {
  namespace: string;
  job: string;
  /** The EncryptionJob generation the Job was made for. */
  generation: number;
  /** JOB_COMPLETION_INDEX: the shard (0 for the planning step). */
  index: number;
  plan: boolean;
}

/** Why the job this pod was made for is not the job as it is now, if it is not. */
function stale(job: EncryptionJob, args: WorkerArgs): string | undefined {
  const gen = job.metadata?.generation ?? 0;
  if (gen !== args.generation) return `the job is at generation ${gen}, this pod was made for ${args.generation}`;
  if (!job.spec.workers) return 'the job no longer has spec.workers';
  return undefined;
}

/** Runs the step and returns the process exit code. */
export async function runWorker(
  client: KubeClient,
  args: WorkerArgs,
  signal: AbortSignal,
  log: Logger,
): Promise<number> {
  const job = await client.getJob(args.namespace, args.job);
  const why = stale(job, args);
  if (why) {
    log.warn({ why }, 'stale worker: exiting without work');
    return EXIT_STALE;
  }
  return args.plan ? planStep(client, job, signal, log) : shardStep(client, job, args.index, signal, log);
}

/** Samples the key space with the pod's identity, makes the shard objects and writes status.shardPlan. */
async function planStep(client: KubeClient, job: EncryptionJob, signal: AbortSignal, log: Logger): Promise<number> {
  const ns = job.metadata?.namespace ?? '';
  const name = job.metadata?.name ?? '';
  const status = job.status ?? {};
  const fingerprint = selectionFingerprint(job.spec);
  const done = status.shardPlan?.shards !== undefined && !status.shardPlan.failure;
  if (done && planFitsSelection(status.shardPlan, job)) {
    log.info('the shards are planned already');
    return 0;
  }
  const fail = async (reason: string, message: string): Promise<number> => {
    const shardPlan = {
      spec: fingerprint,
      completedFor: null,
      createdAt: new Date().toISOString(),
      failure: { reason, message: clip(message) },
    };
    await client.patchStatus(ns, name, { shardPlan });
    log.error({ reason, message }, 'planning failed for good');
    return EXIT_SHARD_FAILED;
  };
  const basePlan = planFor(job, undefined, undefined);
  try {
    validatePlan(basePlan);
  } catch (err) {
    if (err instanceof JobError) return fail(err.reason, err.message);
    throw err;
  }
  const planned = await planJobShards(job, basePlan, shardCount(job.spec), { signal, dryRun: false });
  if (planned === undefined) return EXIT_STOPPED;
  if (!('shards' in planned)) {
    if (!planned.retryable) return fail(planned.reason, planned.message);
    log.warn({ err: planned.message }, 'planning failed; the Job runs this step again');
    return EXIT_RETRY;
  }
  const { shards, inventory } = planned;
  const shardPlan = { ...planned.shardPlan, shards: shards.length, failure: null };
  // The objects before the plan that names them: a pod stopped in between plans again.
  await new ShardStore(client, log).create(job, shards, shardPlan.spec);
  await client.patchStatus(ns, name, { shards: null, shardPlan, ...(inventory ? { inventory } : {}) });
  log.info(
    { shards: shards.length, requests: planned.requests, estimatedObjects: shardPlan.estimatedObjects },
    'planned shards',
  );
  return 0;
}

/** Runs one shard from its checkpoint and keeps its shard object's status current. */
async function shardStep(
  client: KubeClient,
  job: EncryptionJob,
  index: number,
  signal: AbortSignal,
  log: Logger,
): Promise<number> {
  const status = job.status ?? {};
  const store = new ShardStore(client, log);
  const object = await store.get(job, index);
  if (!object || !planFitsSelection(status.shardPlan, job) || object.spec.plan !== status.shardPlan?.spec) {
    log.warn({ index }, 'no shard of the current plan has this index: exiting without work');
    return EXIT_STALE;
  }
  const shard = toShardStatus(object);
  if (shard.phase === 'Complete') {
    log.info({ index }, 'the shard is complete already');
    return 0;
  }
  // The shards of a job are written spread out: about 8 writes a second for the whole job (shardWriteIntervalMs).
  const running = Math.min(status.shardPlan?.shards ?? 1, Math.max(1, job.spec.parallelism ?? 1));
  const writer = store.writer(job, index, false, shardWriteIntervalMs(running));
  const plan = planFor(job, undefined, undefined);
  let result: RunResult | undefined;
  let written: boolean;
  try {
    validatePlan(shardPlan(plan, shard));
    ({ result, written } = await new ShardRunner(shard, writer).run(plan, {
      engine: { signal },
      dryRun: false,
      onProgress: logFailures(log),
      settleMs: () => (signal.aborted ? 20_000 : 120_000),
    }));
  } catch (err) {
    if (!(err instanceof JobError)) throw err;
    shard.phase = 'Failed';
    shard.message = clip(`${err.reason}: ${err.message}`);
    await writer.update(shardStatusPatch(shard), true);
    written = await writer.settle();
    writer.dispose();
  }
  let code = exitCode(shard, result, signal);
  // A result the status does not hold is no result: the Job runs the index again, from the checkpoint it does hold.
  if (!written && code !== EXIT_STOPPED) {
    log.error(
      { shard: index, phase: shard.phase },
      "the shard's final status was not written: exiting to be run again",
    );
    code = EXIT_RETRY;
  }
  log.info(
    { shard: index, status: result?.status, reason: result?.reason, counters: result?.counters, code },
    'shard run ended',
  );
  return code;
}

/** Per-object failures go to the pod's log (the job's status.recentFailures is the in-process runs'). */
function logFailures(log: Logger): (p: Progress) => void {
  const logged = new Set<ObjectFailure>();
  return (p) => {
    for (const f of p.recentFailures) {
      if (logged.has(f)) continue;
      if (logged.size > 1000) logged.clear();
      logged.add(f);
      log.warn({ key: f.key, operation: f.operation, code: f.code, message: f.message }, 'object failed');
    }
  };
}

/** What the pod's exit says to the Job's pod failure policy (workerjob.ts). */
function exitCode(shard: ShardStatus, result: RunResult | undefined, signal: AbortSignal): number {
  if (shard.phase === 'Complete') return 0;
  if (shard.phase === 'Failed') return EXIT_SHARD_FAILED;
  // Stopped, or a transient failure: the next attempt of this index resumes from the checkpoint.
  return result?.status === 'Stopped' || signal.aborted ? EXIT_STOPPED : EXIT_RETRY;
}
