#!/usr/bin/env node
// s3-encrypt: the engine without Kubernetes. Flags follow the AWS CLI's words.
// Exit codes: 0 all done, 1 some objects failed, 2 the run could not start,
// 3 stopped by SIGINT/SIGTERM before the end (resume with --resume).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import {
  addCounters,
  createClients,
  runEngine,
  SSE_TYPES,
  type Counters,
  type Method,
  type OpenUpload,
  type Plan,
  type Progress,
  type RunResult,
  type SseType,
} from './engine/index.js';
import { ReportWriter } from './engine/report.js';

interface Flags {
  sse: SseType;
  sseKmsKeyId?: string;
  bucketKeyEnabled?: boolean;
  dryrun: boolean;
  include: string[];
  exclude: string[];
  concurrency: number;
  maxObjects?: number;
  maxRequestsPerSecond?: number;
  method: Method;
  storageClass?: string;
  inventoryManifest?: string;
  multipartThreshold?: number;
  multipartChunksize?: number;
  resume?: string;
  report?: string;
  reportAll: boolean;
  endpointUrl?: string;
  kmsEndpointUrl?: string;
  region?: string;
  forcePathStyle?: boolean;
  updateObjectEncryption?: boolean;
  progress?: boolean;
  json: boolean;
}

interface CheckpointFile {
  bucket: string;
  prefix: string;
  startAfter?: string;
  /** Objects at or below startAfter: the base of the resumed run's counters. */
  counters: Counters;
  /** Multipart uploads in progress; a resumed run aborts those a crash left open. */
  openUploads?: OpenUpload[];
  updatedAt: string;
}

/** Exit code of a run stopped by a signal: not done, resume it. */
export const EXIT_STOPPED = 3;

function intArg(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function sizeArg(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a size (for example 8MB, 5GiB, 1048576)`);
  const unit = (m[2] ?? 'B').toUpperCase().replace('IB', 'B');
  const mult = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[unit] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m || !m[1]) throw new Error(`"${url}" is not an s3://bucket/prefix URL`);
  return { bucket: m[1], prefix: m[2] ?? '' };
}

function readCheckpoint(path: string, bucket: string, prefix: string): CheckpointFile | undefined {
  if (!existsSync(path)) return undefined;
  const cp = JSON.parse(readFileSync(path, 'utf8')) as CheckpointFile;
  if (cp.bucket !== bucket || cp.prefix !== prefix) {
    throw new Error(`--resume ${path} is for s3://${cp.bucket}/${cp.prefix}, not s3://${bucket}/${prefix}`);
  }
  return cp;
}

function writeCheckpoint(path: string, cp: CheckpointFile): void {
  // Write-then-rename: a crash never leaves a half-written checkpoint.
  writeFileSync(`${path}.tmp`, JSON.stringify(cp, null, 2));
  renameSync(`${path}.tmp`, path);
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('s3-encrypt')
    .description('Re-encrypt the objects under an S3 prefix in place, keeping everything else about them.')
    .argument('<s3url>', 's3://bucket/prefix to re-encrypt')
    .addOption(
      new Option('--sse <type>', 'target server-side encryption').choices([...SSE_TYPES]).makeOptionMandatory(),
    )
    .option('--sse-kms-key-id <key>', 'KMS key for aws:kms*: key id, alias/NAME or ARN (default: the AWS managed key)')
    .option('--bucket-key-enabled', 'use an S3 Bucket Key for SSE-KMS')
    .option('--no-bucket-key-enabled', 'turn the S3 Bucket Key off')
    .option('--dryrun', 'count what would change; change nothing', false)
    .option('--include <glob>', 'only keys matching (relative to the prefix; repeatable)', collect, [])
    .option('--exclude <glob>', 'leave keys matching alone (repeatable)', collect, [])
    .option('--concurrency <n>', 'objects in flight', intArg('--concurrency'), 32)
    .option('--max-objects <n>', 'stop after this many objects (try on a subset first)', intArg('--max-objects'))
    .option('--max-requests-per-second <n>', 'cap on S3 requests per second', intArg('--max-requests-per-second'))
    .addOption(
      new Option('--method <method>', 'how to change an object')
        .choices(['Auto', 'Copy', 'UpdateObjectEncryption'])
        .default('Auto'),
    )
    .option(
      '--update-object-encryption',
      'the endpoint implements S3 UpdateObjectEncryption (default: only AWS itself)',
    )
    .option('--storage-class <class>', 'give copied objects this storage class instead of keeping theirs')
    .option(
      '--inventory-manifest <s3url>',
      'take the objects from this S3 Inventory manifest.json (CSV) instead of listing the bucket',
    )
    .option('--multipart-threshold <size>', 'copy objects larger than this part by part (default 5GiB)', sizeArg)
    .option(
      '--multipart-chunksize <size>',
      'part size for objects that were not uploaded in parts (default 512MiB)',
      sizeArg,
    )
    .option('--resume <file>', 'checkpoint file: resume from it if it exists, keep it up to date')
    .option(
      '--report <dest>',
      'write a per-object report (failures and skips) to a file or s3://bucket/key (.csv or .jsonl)',
    )
    .option('--report-all', 'report every object, not only failures and skips', false)
    .option('--endpoint-url <url>', 'S3-compatible endpoint')
    .option('--kms-endpoint-url <url>', 'KMS-compatible endpoint')
    .option('--region <region>', 'AWS region')
    .option('--force-path-style', 'address buckets as endpoint/bucket')
    .option('--no-progress', 'no progress bar even on a terminal')
    .option('--json', 'print only the JSON summary', false)
    .addHelpText(
      'after',
      '\nExit codes: 0 all done, 1 some objects failed, 2 the run could not start or failed,\n3 stopped by SIGINT/SIGTERM before the end (run again with the same --resume file to go on).',
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  let flags: Flags;
  let target: { bucket: string; prefix: string };
  try {
    program.parse(argv, { from: 'user' });
    flags = program.opts<Flags>();
    target = parseS3Url(program.args[0] ?? '');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return 0;
    if (!code?.startsWith('commander.')) process.stderr.write(`s3-encrypt: ${(err as Error).message}\n`);
    return 2;
  }

  let resumeFrom: CheckpointFile | undefined;
  try {
    resumeFrom = flags.resume ? readCheckpoint(flags.resume, target.bucket, target.prefix) : undefined;
  } catch (err) {
    process.stderr.write(`s3-encrypt: ${(err as Error).message}\n`);
    return 2;
  }
  const plan: Plan = {
    bucket: target.bucket,
    prefix: target.prefix,
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
    ...(flags.maxObjects ? { maxObjects: flags.maxObjects } : {}),
    ...(flags.maxRequestsPerSecond ? { maxRequestsPerSecond: flags.maxRequestsPerSecond } : {}),
    ...(flags.storageClass ? { storageClass: flags.storageClass } : {}),
    ...(flags.inventoryManifest ? { inventoryManifest: flags.inventoryManifest } : {}),
    ...(flags.multipartThreshold !== undefined ? { multipartThreshold: flags.multipartThreshold } : {}),
    ...(flags.multipartChunksize !== undefined ? { multipartPartSize: flags.multipartChunksize } : {}),
    ...(resumeFrom?.startAfter ? { startAfter: resumeFrom.startAfter } : {}),
    ...(resumeFrom?.openUploads?.length ? { abandonedUploads: resumeFrom.openUploads } : {}),
  };
  const base = resumeFrom?.counters ?? {
    scanned: 0,
    encrypted: 0,
    alreadyEncrypted: 0,
    skipped: 0,
    failed: 0,
    bytesEncrypted: 0,
  };

  const clients = createClients(plan.connection, {
    ...(plan.maxRequestsPerSecond ? { maxRequestsPerSecond: plan.maxRequestsPerSecond } : {}),
    ...(plan.concurrency ? { concurrency: plan.concurrency } : {}),
  });
  const report = flags.report ? new ReportWriter({ destination: flags.report, all: flags.reportAll }) : undefined;
  const tty = process.stderr.isTTY && flags.progress !== false && !flags.json;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format:
            '{bar} {percentage}% | {scanned}/{total} objects | {rate} obj/s | {bytes} | ETA {eta_formatted} | enc {encrypted} already {already} skip {skipped} fail {failed}',
          hideCursor: true,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const started = performance.now();
  let lastLine = 0;
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());

  // The resume file: the checkpoint, the counters under it, and the open uploads.
  let saved: { startAfter?: string; counters: Counters; openUploads: OpenUpload[] } = {
    ...(plan.startAfter ? { startAfter: plan.startAfter } : {}),
    counters: base,
    openUploads: plan.abandonedUploads ?? [],
  };
  const save = (): void => {
    if (!flags.resume || flags.dryrun) return;
    writeCheckpoint(flags.resume, {
      bucket: plan.bucket,
      prefix: plan.prefix,
      ...saved,
      updatedAt: new Date().toISOString(),
    });
  };
  const onProgress = (p: Progress): void => {
    // Shown: every finished object. Saved: those under the checkpoint (a resumed run looks at the others again).
    const c = addCounters(base, p.counters);
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? (p.counters.scanned / secs).toFixed(0) : '0';
    saved = {
      ...(p.checkpoint !== undefined
        ? { startAfter: p.checkpoint }
        : saved.startAfter !== undefined
          ? { startAfter: saved.startAfter }
          : {}),
      counters: addCounters(base, p.committed.counters),
      openUploads: p.openUploads,
    };
    if (p.checkpoint !== undefined || p.openUploads.length > 0) save();
    const fields = {
      scanned: c.scanned,
      rate,
      bytes: formatBytes(c.bytesEncrypted),
      encrypted: c.encrypted,
      already: c.alreadyEncrypted,
      skipped: c.skipped,
      failed: c.failed,
    };
    const total = p.total !== undefined ? base.scanned + p.total : undefined;
    if (bar) {
      // Until the count beside the run has a total, grow the bar with what is listed.
      bar.setTotal(Math.max(total ?? c.scanned + 1, c.scanned, 1));
      bar.update(c.scanned, fields);
    } else if (!flags.json && performance.now() - lastLine > 5000) {
      lastLine = performance.now();
      process.stderr.write(
        `${JSON.stringify({ msg: 'progress', ...fields, ...(total !== undefined ? { total } : {}), checkpoint: p.checkpoint })}\n`,
      );
    }
  };

  bar?.start(1, 0, { scanned: 0, rate: '0', bytes: '0 B', encrypted: 0, already: 0, skipped: 0, failed: 0 });
  let result: RunResult;
  try {
    result = await runEngine(plan, {
      clients,
      signal: stop.signal,
      onProgress,
      // Written before the upload's first part is copied: a kill -9 leaves nothing unrecorded.
      recordUploads: (open) => {
        saved = { ...saved, openUploads: open };
        save();
      },
      ...(report ? { onOutcome: (key, outcome) => report.add(key, outcome) } : {}),
    });
  } finally {
    bar?.stop();
  }
  let reportLocation: string | undefined;
  if (report) {
    try {
      reportLocation = await report.close(clients.s3);
    } catch (err) {
      process.stderr.write(`s3-encrypt: writing the report failed: ${(err as Error).message}\n`);
    }
  }
  clients.destroy();
  const seconds = (performance.now() - started) / 1000;
  const counters = addCounters(base, result.counters);
  const summary = {
    status: result.status,
    ...(result.reason ? { reason: result.reason, message: result.message } : {}),
    bucket: plan.bucket,
    prefix: plan.prefix,
    sse: plan.target.type,
    ...(result.resolvedKmsKeyArn ? { kmsKeyArn: result.resolvedKmsKeyArn } : {}),
    dryRun: plan.dryRun,
    counters,
    skippedByReason: result.skippedByReason,
    ...(plan.dryRun ? { wouldEncrypt: result.planned, estimate: result.estimate } : {}),
    ...(result.checkpoint !== undefined ? { checkpoint: result.checkpoint } : {}),
    ...(result.noncurrentVersions !== undefined ? { noncurrentVersions: result.noncurrentVersions } : {}),
    ...(result.abortedUploads ? { abortedUploads: result.abortedUploads } : {}),
    ...(result.warnings?.length ? { warnings: result.warnings } : {}),
    seconds: Number(seconds.toFixed(3)),
    objectsPerSecond: Number((result.counters.scanned / Math.max(seconds, 0.001)).toFixed(1)),
    requests: result.requests,
    failures: result.recentFailures,
    ...(reportLocation ? { report: reportLocation } : {}),
  };
  process.stdout.write(`${JSON.stringify(summary, null, flags.json ? 0 : 2)}\n`);
  if (result.status === 'Failed') {
    if (!flags.json) process.stderr.write(`s3-encrypt: ${result.message ?? result.reason ?? 'failed'}\n`);
    return counters.scanned === 0 ? 2 : 1;
  }
  for (const w of result.warnings ?? []) if (!flags.json) process.stderr.write(`s3-encrypt: warning: ${w}\n`);
  // Stopped is not done: a script must not take the prefix for finished.
  if (result.status === 'Stopped') return EXIT_STOPPED;
  return counters.failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`s3-encrypt: ${String(err)}\n`);
    process.exit(2);
  },
);
