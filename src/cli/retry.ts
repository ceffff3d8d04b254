// --retry-failed REPORT: the keys a finished run failed on, from its report, run
// again as the engine's Plan.keys (each HEADed; one that is gone is skipped as
// vanished). The report is this tool's --report (a file or s3://), or an
// operator job's report in S3: one part, or the manifest-NNNN.json listing its
// parts. Whatever cannot be read as a report, or is a report of another bucket,
// is refused before any object is looked at.
import { createReadStream } from 'node:fs';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { errorCode, errorMessage } from '../engine/s3/errors.js';
import type { Outcome } from '../engine/index.js';
import { NotAReportError, reportFailures, reportRows, type ReportRow } from '../engine/bookkeeping/report-read.js';
import { UsageError } from './args.js';

export interface RetryKeys {
  /** The report as given. */
  source: string;
  /** The keys whose last row in the report says failed. */
  keys: string[];
  /** Of those, outside this run's prefix: not looked at. */
  outsidePrefix: number;
  notes: string[];
}

const s3Uri = (uri: string): { bucket: string; key: string } | undefined => {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return m ? { bucket: m[1] ?? '', key: m[2] ?? '' } : undefined;
};

async function* chunksOf(source: string, s3: () => S3Client): AsyncGenerator<Uint8Array> {
  const at = s3Uri(source);
  if (!at) {
    yield* createReadStream(source) as AsyncIterable<Uint8Array>;
    return;
  }
  const got = await s3().send(new GetObjectCommand({ Bucket: at.bucket, Key: at.key }));
  if (got.Body) yield* got.Body as AsyncIterable<Uint8Array>;
}

async function textOf(source: string, s3: () => S3Client): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const c of chunksOf(source, s3)) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

/** The parts an operator's report manifest lists (reports/run.manifest-0003.json), or undefined for a report. */
async function manifestParts(source: string, s3: () => S3Client): Promise<string[] | undefined> {
  if (!/\.manifest-\d+\.json$/.test(source)) return undefined;
  let manifest: unknown;
  try {
    manifest = JSON.parse(await textOf(source, s3));
  } catch {
    return undefined; // not a manifest: read it as a report, which says what is wrong
  }
  const parts = (manifest as { parts?: unknown }).parts;
  if (!Array.isArray(parts) || !parts.every((p) => typeof p === 'string' && s3Uri(p))) return undefined;
  return parts as string[];
}

async function* rowsOf(sources: string[], s3: () => S3Client): AsyncGenerator<ReportRow> {
  for (const source of sources) yield* reportRows(chunksOf(source, s3));
}

function readError(source: string, err: unknown): UsageError {
  if (err instanceof UsageError) return err;
  if (err instanceof NotAReportError)
    return new UsageError(`--retry-failed ${source} is not an s3-encrypt report: ${err.message}`);
  if (s3Uri(source))
    return new UsageError(`--retry-failed ${source}: GetObject failed: ${errorCode(err)}: ${errorMessage(err)}`);
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new UsageError(`--retry-failed ${source}: no such file`);
  return new UsageError(`--retry-failed ${source} cannot be read: ${errorMessage(err)}`);
}

/** The failed keys of the report, checked against this run's bucket. Throws UsageError (exit 2). */
export async function readRetryKeys(
  source: string,
  target: { bucket: string; prefix: string },
  s3: () => S3Client,
): Promise<RetryKeys> {
  let failures;
  try {
    const parts = (await manifestParts(source, s3)) ?? [source];
    failures = await reportFailures(rowsOf(parts, s3));
  } catch (err) {
    throw readError(source, err);
  }
  const others = failures.buckets.filter((b) => b !== target.bucket);
  if (others.length > 0)
    throw new UsageError(
      `--retry-failed ${source} is a report of bucket ${others.join(', ')}; this run is for bucket ${target.bucket}`,
    );
  const notes: string[] = [];
  if (failures.rows > 0 && failures.buckets.length === 0)
    notes.push(
      `${source} does not name its bucket (an operator report, or one written before reports had a bucket column): its keys are looked at in bucket ${target.bucket}`,
    );
  const outsidePrefix = failures.keys.filter((k) => !k.startsWith(target.prefix)).length;
  if (outsidePrefix > 0)
    notes.push(
      `${outsidePrefix} failed keys of ${source} are outside s3://${target.bucket}/${target.prefix}: not looked at`,
    );
  return { source, keys: failures.keys, outsidePrefix, notes };
}

/** What the retry changed, for the summary: where each retried key stands now. */
export class RetryTally {
  nowAtTarget = 0;
  wouldEncrypt = 0;
  stillFailed = 0;
  gone = 0;
  skipped = 0;

  constructor(private readonly keys: RetryKeys) {}

  add(outcome: Outcome): void {
    if (outcome.kind === 'encrypted' || outcome.kind === 'alreadyEncrypted') this.nowAtTarget++;
    else if (outcome.kind === 'wouldEncrypt') this.wouldEncrypt++;
    else if (outcome.kind === 'failed') this.stillFailed++;
    else if (outcome.reason === 'vanished') this.gone++;
    else this.skipped++;
  }

  summary(): Record<string, unknown> {
    const looked = this.nowAtTarget + this.wouldEncrypt + this.stillFailed + this.gone + this.skipped;
    return {
      report: this.keys.source,
      failedKeys: this.keys.keys.length,
      nowAtTarget: this.nowAtTarget,
      ...(this.wouldEncrypt > 0 ? { wouldEncrypt: this.wouldEncrypt } : {}),
      stillFailed: this.stillFailed,
      gone: this.gone,
      skipped: this.skipped,
      notLookedAt: this.keys.keys.length - looked,
    };
  }

  /** One line for a person: "retried 5 failed keys of r.csv: 4 now at the target, 1 still failed, 0 gone". */
  line(): string {
    const s = this.summary();
    const extra = [
      ...(this.wouldEncrypt > 0 ? [`${this.wouldEncrypt} would be encrypted`] : []),
      ...(this.skipped > 0 ? [`${this.skipped} skipped`] : []),
      ...(Number(s.notLookedAt) > 0 ? [`${String(s.notLookedAt)} not looked at`] : []),
    ];
    return `retried ${this.keys.keys.length} failed keys of ${this.keys.source}: ${this.nowAtTarget} now at the target, ${this.stillFailed} still failed, ${this.gone} gone${extra.map((e) => `, ${e}`).join('')}`;
  }
}
