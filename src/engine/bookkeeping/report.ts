// A per-object report, like an S3 Batch Operations completion report: failures
// only by default, or every outcome; CSV or JSON lines; to a file or to S3.
// Rows stream to a local file, so memory does not grow with the object count.
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Outcome } from '../types.js';

export type ReportFormat = 'csv' | 'jsonl';

export interface ReportOptions {
  /** A file path or s3://bucket/key. */
  destination: string;
  /** Every outcome, not only failures and skips. */
  all?: boolean;
  format?: ReportFormat;
  /**
   * The bucket the keys are in, written in every row (a last CSV column), so a
   * reader can tell a report of another bucket (s3-encrypt --retry-failed).
   * Absent: no bucket column (the operator's reports name their job instead).
   */
  bucket?: string;
}

export function reportFormat(destination: string): ReportFormat {
  return /\.csv$/i.test(destination) ? 'csv' : 'jsonl';
}

function csvField(v: string | number | undefined): string {
  const s = v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

interface Row {
  key: string;
  outcome: string;
  detail?: string;
  operation?: string;
  code?: string;
  message?: string;
  bytes?: number;
  bucket?: string;
}

function toRow(key: string, o: Outcome): Row {
  switch (o.kind) {
    case 'encrypted':
      return { key, outcome: o.kind, detail: o.method, bytes: o.bytes, ...(o.detail ? { message: o.detail } : {}) };
    case 'wouldEncrypt':
      return { key, outcome: o.kind, detail: o.method, bytes: o.bytes };
    case 'alreadyEncrypted':
      return { key, outcome: o.kind };
    case 'skipped':
      return { key, outcome: o.kind, detail: o.reason, ...(o.detail ? { message: o.detail } : {}) };
    case 'failed':
      return { key, outcome: o.kind, operation: o.failure.operation, code: o.failure.code, message: o.failure.message };
  }
}

export const REPORT_COLUMNS: readonly (keyof Row)[] = [
  'key',
  'outcome',
  'detail',
  'operation',
  'code',
  'message',
  'bytes',
  'bucket',
];

export class ReportWriter {
  private readonly out: WriteStream;
  private readonly localPath: string;
  /** The temporary directory of an s3:// report: removed once uploaded (or given up). */
  private readonly tempDir: string | undefined;
  private readonly format: ReportFormat;
  private readonly columns: readonly (keyof Row)[];
  /** The first write error (disk full, I/O): later rows are dropped and close() reports it. */
  private error: Error | undefined;
  rows = 0;

  constructor(private readonly opts: ReportOptions) {
    this.format = opts.format ?? reportFormat(opts.destination);
    this.columns = opts.bucket !== undefined ? REPORT_COLUMNS : REPORT_COLUMNS.filter((c) => c !== 'bucket');
    this.tempDir = opts.destination.startsWith('s3://') ? mkdtempSync(join(tmpdir(), 's3eo-report-')) : undefined;
    this.localPath = this.tempDir ? join(this.tempDir, `report.${this.format}`) : opts.destination;
    this.out = createWriteStream(this.localPath);
    // Listening from the start: an 'error' event without a listener would end the process.
    this.out.on('error', (err) => {
      this.error ??= new Error(`writing the report file ${this.localPath} failed: ${err.message}`, { cause: err });
    });
    if (this.format === 'csv') this.out.write(`${this.columns.join(',')}\n`);
  }

  add(key: string, outcome: Outcome): void {
    if (this.error) return;
    if (!this.opts.all && outcome.kind !== 'failed' && outcome.kind !== 'skipped') return;
    const row: Row = {
      ...toRow(key, outcome),
      ...(this.opts.bucket !== undefined ? { bucket: this.opts.bucket } : {}),
    };
    this.rows++;
    this.out.write(
      this.format === 'csv' ? `${this.columns.map((c) => csvField(row[c])).join(',')}\n` : `${JSON.stringify(row)}\n`,
    );
  }

  /** Flushes the local file without uploading it (the operator uploads it as one part of the job's report). */
  async closeFile(): Promise<{ path: string; contentType: string }> {
    await this.end();
    if (this.error) throw this.error;
    return { path: this.localPath, contentType: this.format === 'csv' ? 'text/csv' : 'application/x-ndjson' };
  }

  /** Flushes the file; uploads it when the destination is s3://. Returns where it went. */
  async close(s3?: S3Client): Promise<string> {
    try {
      await this.closeFile();
      const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(this.opts.destination);
      if (!m) return this.localPath;
      if (!s3) throw new Error(`report ${this.opts.destination}: no S3 client to upload it with`);
      await s3.send(
        new PutObjectCommand({
          Bucket: m[1],
          Key: m[2],
          Body: createReadStream(this.localPath),
          ContentLength: statSync(this.localPath).size,
          ContentType: this.format === 'csv' ? 'text/csv' : 'application/x-ndjson',
          // A report never replaces an object that is already there (412 instead).
          IfNoneMatch: '*',
        }),
      );
      return this.opts.destination;
    } finally {
      this.removeTemp();
    }
  }

  /** Gives the report up (the run failed before it could be closed): closes and removes the temporary file. */
  dispose(): void {
    this.out.destroy();
    this.removeTemp();
  }

  private end(): Promise<void> {
    if (this.out.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.out.once('close', () => resolve());
      this.out.end();
    });
  }

  /** Removes the temporary directory the file was written in (never a path the user chose). */
  removeTemp(): void {
    if (this.tempDir && dirname(this.localPath) === this.tempDir)
      rmSync(this.tempDir, { recursive: true, force: true });
  }
}
