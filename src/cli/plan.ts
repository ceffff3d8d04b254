// The plan step of s3-encrypt: what the user asked (flags, target), where an
// earlier run stopped (the resume file) and, for --retry-failed, which keys to
// look at (the report), as the engine's Plan. Bad input ends here with a
// UsageError (exit 2), before any object is looked at.
import { createClients, emptyCounters, type Counters, type Plan } from '../engine/index.js';
import type { CliArgs } from './args.js';
import { readResumeFile, ResumeFile, type ResumeStart } from './resume-file.js';
import { readRetryKeys, type RetryKeys } from './retry.js';
import { selectionOf } from './selection.js';

export interface PreparedRun {
  plan: Plan;
  resume: ResumeFile;
  /** The counters of the keys the resume file says are finished. */
  base: Counters;
  retry?: RetryKeys;
  /** What the user should know before the run (stderr). */
  notes: string[];
  /** Why there is nothing to do (--max-objects reached over the resume file's life). */
  nothingToDo?: string;
}

export function planOf(args: CliArgs, start: ResumeStart): Plan {
  const { flags } = args;
  return {
    bucket: args.bucket,
    prefix: args.prefix,
    target: {
      type: flags.sse,
      ...(flags.sseKmsKeyId ? { kmsKeyId: flags.sseKmsKeyId } : {}),
      ...(flags.bucketKeyEnabled !== undefined ? { bucketKeyEnabled: flags.bucketKeyEnabled } : {}),
    },
    connection: {
      ...(flags.region ? { region: flags.region } : {}),
      ...(flags.endpointUrl ? { endpoint: flags.endpointUrl } : {}),
      ...(flags.kmsEndpointUrl ? { kmsEndpoint: flags.kmsEndpointUrl } : {}),
      ...(flags.forcePathStyle ? { forcePathStyle: true } : {}),
      ...(flags.updateObjectEncryption ? { supportsUpdateObjectEncryption: true } : {}),
    },
    include: flags.include,
    exclude: flags.exclude,
    dryRun: flags.dryrun,
    method: flags.method,
    concurrency: flags.concurrency,
    ...(flags.maxRequestsPerSecond ? { maxRequestsPerSecond: flags.maxRequestsPerSecond } : {}),
    ...(flags.storageClass ? { storageClass: flags.storageClass } : {}),
    ...(flags.inventoryManifest ? { inventoryManifest: flags.inventoryManifest } : {}),
    ...(flags.multipartThreshold !== undefined ? { multipartThreshold: flags.multipartThreshold } : {}),
    ...(flags.multipartChunksize !== undefined ? { multipartPartSize: flags.multipartChunksize } : {}),
    ...(start.from?.startAfter ? { startAfter: start.from.startAfter } : {}),
    ...(start.abandonedUploads.length > 0 ? { abandonedUploads: start.abandonedUploads } : {}),
  };
}

/** The failed keys of --retry-failed's report (read with the run's own connection when it is in S3). */
async function retryKeys(source: string, plan: Plan): Promise<RetryKeys> {
  let clients: ReturnType<typeof createClients> | undefined;
  try {
    return await readRetryKeys(source, plan, () => (clients ??= createClients(plan.connection)).s3);
  } finally {
    clients?.destroy();
  }
}

export async function prepareRun(args: CliArgs): Promise<PreparedRun> {
  const { flags } = args;
  const selection = selectionOf(args);
  const start = flags.resume
    ? readResumeFile(flags.resume, selection, flags.restart)
    : { abandonedUploads: [], notes: [] };
  const base = start.from?.counters ?? emptyCounters();
  const plan = planOf(args, start);
  const out: PreparedRun = {
    plan,
    resume: new ResumeFile(flags.dryrun ? undefined : flags.resume, selection, start),
    base,
    notes: [...start.notes],
  };
  if (flags.maxObjects !== undefined) {
    // Counted over the resume file's life, as the operator counts over its checkpoint's.
    const left = flags.maxObjects - base.scanned;
    if (left <= 0)
      out.nothingToDo = `--max-objects ${flags.maxObjects} is reached already: ${flags.resume} counts ${base.scanned} objects (go on with a larger --max-objects, or without it)`;
    else plan.maxObjects = left;
  }
  if (flags.retryFailed) {
    out.retry = await retryKeys(flags.retryFailed, plan);
    plan.keys = out.retry.keys;
    out.notes.push(...out.retry.notes);
  }
  return out;
}
