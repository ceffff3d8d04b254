// The --resume file: where a stopped or crashed s3-encrypt goes on from. It
// holds the checkpoint (every key up to it is finished), the counters of those
// keys, and the multipart uploads in flight (a resumed run aborts those a crash
// left open).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { emptyCounters, type Counters, type OpenUpload } from '../engine/index.js';

export interface CheckpointFile {
  bucket: string;
  prefix: string;
  startAfter?: string;
  /** Objects at or below startAfter: the base of the resumed run's counters. */
  counters: Counters;
  /** Multipart uploads in progress; a resumed run aborts those a crash left open. */
  openUploads?: OpenUpload[];
  updatedAt: string;
}

/** What is saved as the run goes: the checkpoint, the counters under it, and the open uploads. */
export interface ResumeState {
  startAfter?: string;
  counters: Counters;
  openUploads: OpenUpload[];
}

export function readCheckpoint(path: string, bucket: string, prefix: string): CheckpointFile | undefined {
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

/** The resume file of one run: kept in memory, written when the checkpoint moves or an upload opens. */
export class ResumeFile {
  state: ResumeState;

  /** path undefined (no --resume, or a dry run): nothing is written. */
  constructor(
    private readonly path: string | undefined,
    private readonly target: { bucket: string; prefix: string },
    from: CheckpointFile | undefined,
  ) {
    this.state = {
      ...(from?.startAfter ? { startAfter: from.startAfter } : {}),
      counters: from?.counters ?? emptyCounters(),
      openUploads: from?.openUploads ?? [],
    };
  }

  save(): void {
    if (!this.path) return;
    writeCheckpoint(this.path, { ...this.target, ...this.state, updatedAt: new Date().toISOString() });
  }
}
