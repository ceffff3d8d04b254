// A sharded job's shards as objects of their own: one EncryptionShard per key
// range, owned by the EncryptionJob (controller owner reference, deleted with
// it) and labelled with the job's name. Whoever runs a shard writes only that
// object's status, so the job's size does not grow with the shard count. In
// memory a run still works with ShardStatus (the range and the status in one),
// read from the objects (`hydrate`) and written back to them (`ShardStore`).
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import {
  GROUP,
  KIND,
  SHARD_KIND,
  VERSION,
  type EncryptionJob,
  type EncryptionJobStatus,
  type EncryptionShard,
  type EncryptionShardStatus,
  type ShardStatus,
} from './api.js';
import { apiStatus, type KubeClient } from './kubeclient.js';
import { StatusWriter } from './status.js';

/** Labels of a job's shard objects: the job (as on its worker Jobs), and a dry run's own shards. */
export const SHARD_JOB_LABEL = 's3encryption.dev/job';
export const SHARD_DRY_RUN_LABEL = 's3encryption.dev/dry-run';

/**
 * Multipart uploads a shard run keeps open at once (objects above the multipart threshold; more
 * wait): each is recorded in the shard's object, whose size this bounds (a key is up to 1 KiB).
 */
export const SHARD_MAX_OPEN_UPLOADS = 4;

/** How many shard objects are created or deleted at once, and how many such calls a second at most. */
const CREATE_CONCURRENCY = 16;
/**
 * A plan of 1,024 shards is 1,024 creates: paced so that it is no burst against the API server (its
 * priority and fairness would answer 429 on a busy cluster); about 20 s for 1,024.
 */
const CREATE_CALLS_PER_SECOND = 50;

/** A label value (at most 63 characters) for the job's name. */
export function jobLabelValue(jobName: string): string {
  if (jobName.length <= 63) return jobName;
  const hash = createHash('sha256').update(jobName).digest('hex').slice(0, 8);
  return `${jobName.slice(0, 54).replace(/[-.]+$/, '')}-${hash}`;
}

/** The object name of shard `index` (a dry run's shards have their own). */
export function shardName(jobName: string, index: number, dryRun: boolean): string {
  const suffix = `${dryRun ? 'dry' : 'shard'}-${index}`;
  const plain = `${jobName}-${suffix}`;
  if (plain.length <= 253) return plain;
  const hash = createHash('sha256').update(jobName).digest('hex').slice(0, 8);
  return `${jobName.slice(0, 253 - suffix.length - hash.length - 2).replace(/[-.]+$/, '')}-${hash}-${suffix}`;
}

export function shardSelector(job: EncryptionJob): string {
  return `${SHARD_JOB_LABEL}=${jobLabelValue(job.metadata?.name ?? '')}`;
}

/** Is the shard this EncryptionJob's own (by uid)? A shard of an earlier job of the same name is not. */
export function shardOwnedBy(shard: EncryptionShard, job: EncryptionJob): boolean {
  const uid = job.metadata?.uid;
  return uid !== undefined && (shard.metadata?.ownerReferences ?? []).some((r) => r.uid === uid && r.controller);
}

/** The range and the status of a shard object, as a run works with them. */
export function toShardStatus(o: EncryptionShard): ShardStatus {
  const st = o.status ?? {};
  const out: ShardStatus = { index: o.spec.index, startAfter: o.spec.startAfter, phase: st.phase ?? 'Pending' };
  if (o.spec.endAt !== undefined) out.endAt = o.spec.endAt;
  if (st.checkpoint) out.checkpoint = st.checkpoint;
  if (st.checkpointProgress) out.checkpointProgress = st.checkpointProgress;
  if (st.progress) out.progress = st.progress;
  if (st.openUploads && st.openUploads.length > 0) out.openUploads = st.openUploads;
  if (typeof st.budgetHeld === 'number') out.budgetHeld = st.budgetHeld;
  if (typeof st.noncurrentVersions === 'number') out.noncurrentVersions = st.noncurrentVersions;
  if (st.message) out.message = st.message;
  return out;
}

/** Every status field of `s`, absent ones as null: a merge patch then leaves nothing of an earlier write. */
export function shardStatusPatch(s: ShardStatus): EncryptionShardStatus {
  return {
    phase: s.phase,
    checkpoint: s.checkpoint ?? null,
    checkpointProgress: s.checkpointProgress ?? null,
    progress: s.progress ?? null,
    openUploads: s.openUploads ?? null,
    budgetHeld: s.budgetHeld ?? null,
    noncurrentVersions: s.noncurrentVersions ?? null,
    message: s.message ?? null,
    updatedAt: new Date().toISOString(),
  };
}

/** A shard's status as text, to tell whether an object already holds it. */
function statusText(s: ShardStatus): string {
  return JSON.stringify({ ...shardStatusPatch(s), updatedAt: '' });
}

/** The object of shard `s` of `job`'s plan `plan` (its status is written after the create: a subresource). */
export function shardObject(job: EncryptionJob, s: ShardStatus, plan: string, dryRun: boolean): EncryptionShard {
  const name = job.metadata?.name ?? '';
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: SHARD_KIND,
    metadata: {
      name: shardName(name, s.index, dryRun),
      namespace: job.metadata?.namespace ?? '',
      labels: {
        'app.kubernetes.io/name': 's3-encryption-operator',
        [SHARD_JOB_LABEL]: jobLabelValue(name),
        ...(dryRun ? { [SHARD_DRY_RUN_LABEL]: 'true' } : {}),
      },
      ownerReferences: [
        { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, name, uid: job.metadata?.uid ?? '', controller: true },
      ],
    },
    spec: {
      job: name,
      index: s.index,
      startAfter: s.startAfter,
      ...(s.endAt !== undefined ? { endAt: s.endAt } : {}),
      plan,
      ...(dryRun ? { dryRun: true } : {}),
    },
  };
}

/** Runs `fn` over `items`, `n` at a time, starting at most CREATE_CALLS_PER_SECOND a second. */
async function eachLimited<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  let next = Date.now();
  const gap = 1000 / CREATE_CALLS_PER_SECOND;
  const worker = async (): Promise<void> => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      const at = Math.max(Date.now(), next);
      next = at + gap;
      if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, queue.length) }, worker));
}

/** A shard as planned with nothing done: what a new object without a status already says. */
function untouched(s: ShardStatus): boolean {
  const p = s.progress;
  const counted = p ? p.scanned + p.encrypted + p.alreadyEncrypted + p.skipped + p.failed > 0 : false;
  return (
    s.phase === 'Pending' &&
    !counted &&
    s.checkpoint === undefined &&
    s.checkpointProgress === undefined &&
    (s.openUploads?.length ?? 0) === 0 &&
    s.budgetHeld === undefined &&
    s.noncurrentVersions === undefined &&
    s.message === undefined
  );
}

/** What a job's shard objects hold, split by run kind and by whether they make up the job's current plan. */
export interface HydratedShards {
  /** The job with status.shards / dryRunShards read from its objects (or its deprecated list, to carry over). */
  job: EncryptionJob;
  /** Objects that are not a whole plan of the job's status (another selection, a plan cut short): to retire. */
  stale: EncryptionShard[];
}

/**
 * The shards of a plan, in index order, when `objects` are exactly the plan `spec` of `count`
 * shards (every index once); else undefined (the plan was cut short, or they are of another).
 */
function wholePlan(
  objects: EncryptionShard[],
  spec: string | undefined,
  count: number | undefined,
): ShardStatus[] | undefined {
  if (!spec || objects.length === 0) return undefined;
  if (objects.some((o) => o.spec.plan !== spec)) return undefined;
  const sorted = [...objects].sort((a, b) => a.spec.index - b.spec.index);
  if (sorted.some((o, i) => o.spec.index !== i)) return undefined;
  if (count !== undefined && count !== sorted.length) return undefined;
  return sorted.map(toShardStatus);
}

/**
 * Reads the job's shard objects into its status (in memory): status.shards for the real runs and
 * status.dryRunShards for a dry run's, each only when they are the whole plan its shardPlan names.
 * A job whose status still has the deprecated list (an operator before shard objects) keeps it:
 * the run carries it over into objects. Objects that make no whole plan come back as `stale`.
 */
export function hydrate(job: EncryptionJob, objects: EncryptionShard[]): HydratedShards {
  const own = objects.filter((o) => shardOwnedBy(o, job));
  const status = { ...(job.status ?? {}) };
  const stale: EncryptionShard[] = [];
  for (const dry of [false, true]) {
    const mine = own.filter((o) => (o.spec.dryRun ?? false) === dry);
    const legacy = dry ? status.dryRunShards : status.shards;
    if ((legacy?.length ?? 0) > 0) {
      // Carried over by the next run, which writes the objects from this list (an earlier carry-over cut
      // short left objects with the same content, which it overwrites).
      continue;
    }
    const plan = dry ? status.dryRunShardPlan : status.shardPlan;
    const shards = wholePlan(mine, plan?.spec, plan?.shards);
    if (shards) {
      if (dry) status.dryRunShards = shards;
      else status.shards = shards;
    } else {
      stale.push(...mine);
      // No whole plan: the run plans again (after the stale objects' open uploads are handed on).
      if (mine.length > 0 || plan?.shards !== undefined) {
        if (dry) status.dryRunShardPlan = null;
        else status.shardPlan = null;
      }
    }
  }
  return { job: { ...job, status }, stale };
}

/** Reads, creates, writes and deletes one job's shard objects. */
export class ShardStore {
  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
  ) {}

  /** The job's shard objects (its own, by uid), real and dry run alike. */
  async list(job: EncryptionJob): Promise<EncryptionShard[]> {
    const items = await this.client.listShards(job.metadata?.namespace ?? '', shardSelector(job));
    return items.filter((o) => shardOwnedBy(o, job));
  }

  /** The job as its shard objects say (hydrate), read from the API server. */
  async hydrate(job: EncryptionJob): Promise<HydratedShards> {
    return hydrate(job, await this.list(job));
  }

  /**
   * Makes the objects of `shards` (plan `plan`) exist with these statuses: creates the missing,
   * writes the status of those whose status differs from `known` (what the objects held), and
   * deletes the job's other shard objects of this run kind. A shard of that name owned by another
   * job (an earlier one of the same name) is deleted first.
   */
  async sync(
    job: EncryptionJob,
    shards: ShardStatus[],
    plan: string,
    dryRun: boolean,
    known?: ShardStatus[],
  ): Promise<void> {
    const ns = job.metadata?.namespace ?? '';
    const existing = new Map(
      (await this.client.listShards(ns, shardSelector(job)))
        .filter((o) => (o.spec.dryRun ?? false) === dryRun)
        .map((o) => [o.metadata?.name ?? '', o]),
    );
    const wanted = new Set<string>();
    const before = new Map((known ?? []).map((s) => [s.index, statusText(s)]));
    await eachLimited(shards, CREATE_CONCURRENCY, async (s) => {
      const body = shardObject(job, s, plan, dryRun);
      const name = body.metadata?.name ?? '';
      wanted.add(name);
      let found = existing.get(name);
      const same = found && shardOwnedBy(found, job) && JSON.stringify(found.spec) === JSON.stringify(body.spec);
      if (found && !same) {
        await this.client.deleteShard(ns, name, found.metadata?.uid ?? '');
        found = undefined;
      }
      const created = !found && (await this.createOne(body));
      if (!found && !created) await this.expectOwn(job, body, s.index);
      // A new object already says Pending; one that holds this status is not written again (a resume of 1,024 shards).
      const write = created ? !untouched(s) : !found || before.get(s.index) !== statusText(s);
      if (write) await this.client.patchShardStatus(ns, name, shardStatusPatch(s));
    });
    const extra = [...existing.values()].filter((o) => !wanted.has(o.metadata?.name ?? '') && shardOwnedBy(o, job));
    await this.delete(extra);
  }

  /** Shard `index` of the job's real runs, if it exists and is the job's own. */
  async get(job: EncryptionJob, index: number): Promise<EncryptionShard | undefined> {
    const ns = job.metadata?.namespace ?? '';
    const found = await this.client.getShard(ns, shardName(job.metadata?.name ?? '', index, false));
    return found && shardOwnedBy(found, job) ? found : undefined;
  }

  /**
   * Makes the objects of a new plan without listing (a planning worker pod may only get and create):
   * an object of that name left by an earlier attempt of this plan is written again; one of another
   * plan or job is an error (the operator retires a job's stale shards before it plans again).
   */
  async create(job: EncryptionJob, shards: ShardStatus[], plan: string): Promise<void> {
    const ns = job.metadata?.namespace ?? '';
    await eachLimited(shards, CREATE_CONCURRENCY, async (s) => {
      const body = shardObject(job, s, plan, false);
      const name = body.metadata?.name ?? '';
      if (await this.createOne(body)) {
        if (!untouched(s)) await this.client.patchShardStatus(ns, name, shardStatusPatch(s));
        return;
      }
      // Made by an earlier attempt of this plan: its status is made what this plan says.
      await this.expectOwn(job, body, s.index);
      await this.client.patchShardStatus(ns, name, shardStatusPatch(s));
    });
  }

  /**
   * Retires shard objects no run of the job will use: their open multipart uploads are handed to the
   * job's checkpoint first (the next run aborts them), and the plan they made is dropped from the
   * job's status, then they are deleted.
   */
  async retire(job: EncryptionJob, objects: EncryptionShard[]): Promise<void> {
    const ns = job.metadata?.namespace ?? '';
    const name = job.metadata?.name ?? '';
    const uploads = objects.flatMap((o) => o.status?.openUploads ?? []);
    const real = objects.some((o) => !o.spec.dryRun);
    const dry = objects.some((o) => o.spec.dryRun);
    const status: EncryptionJobStatus = {
      ...(real ? { shardPlan: null } : {}),
      ...(dry ? { dryRunShardPlan: null } : {}),
    };
    if (uploads.length > 0) {
      const open = job.status?.checkpoint?.openUploads ?? [];
      const seen = new Set(open.map((u) => u.uploadId));
      status.checkpoint = { openUploads: [...open, ...uploads.filter((u) => !seen.has(u.uploadId))] };
    }
    await this.client.patchStatus(ns, name, status);
    await this.delete(objects);
  }

  /** Deletes the job's shard objects of one run kind (a real run voids a dry run's count). */
  async deleteKind(job: EncryptionJob, dryRun: boolean): Promise<void> {
    await this.delete((await this.list(job)).filter((o) => (o.spec.dryRun ?? false) === dryRun));
  }

  /** Deletes these shard objects (a plan of another selection, or the job back to one run). */
  async delete(objects: EncryptionShard[]): Promise<void> {
    await eachLimited(objects, CREATE_CONCURRENCY, (o) =>
      this.client.deleteShard(o.metadata?.namespace ?? '', o.metadata?.name ?? '', o.metadata?.uid ?? ''),
    );
    if (objects.length > 0) this.log.info({ shards: objects.length }, 'deleted shard objects of an earlier plan');
  }

  /** A coalescing writer of one shard object's status (at most one write per `intervalMs`). */
  writer(job: EncryptionJob, index: number, dryRun: boolean, intervalMs: number): StatusWriter<EncryptionShardStatus> {
    const ns = job.metadata?.namespace ?? '';
    const name = shardName(job.metadata?.name ?? '', index, dryRun);
    return new StatusWriter<EncryptionShardStatus>(
      this.client,
      ns,
      name,
      this.log,
      intervalMs,
      (status) => this.client.patchShardStatus(ns, name, status),
      SHARD_KIND,
    );
  }

  /** The object of that name exists: it must be this shard of this plan, never another job's to write over. */
  private async expectOwn(job: EncryptionJob, body: EncryptionShard, index: number): Promise<void> {
    const ns = body.metadata?.namespace ?? '';
    const name = body.metadata?.name ?? '';
    const found = await this.client.getShard(ns, name);
    if (!found || !shardOwnedBy(found, job) || JSON.stringify(found.spec) !== JSON.stringify(body.spec))
      throw new Error(`EncryptionShard ${ns}/${name} exists and is not shard ${index} of this plan`);
  }

  /** True when made now; false when an object of that name exists (an earlier attempt whose answer was lost). */
  private async createOne(body: EncryptionShard): Promise<boolean> {
    try {
      await this.client.createShard(body);
      return true;
    } catch (err) {
      if (apiStatus(err) !== 409) throw err;
      return false;
    }
  }
}

/**
 * How often one shard object is written: once a second while few shards run, less often as more
 * do, so that the shards of one job add up to about `perSecond` writes a second (phase changes
 * and open multipart uploads are written at once).
 */
export function shardWriteIntervalMs(running: number, perSecond = 8, maxMs = 30_000): number {
  return Math.min(maxMs, Math.max(1000, Math.ceil(running / perSecond) * 1000));
}
