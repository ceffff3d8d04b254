// The --resume file: where a stopped or crashed s3-encrypt goes on from. It
// holds the selection it was made for (selection.ts), the checkpoint (every key
// up to it is finished, for that selection only), the counters of those keys,
// and the multipart uploads in flight (a resumed run aborts those a crash left
// open). A file made for another selection is refused, naming each difference,
// unless --restart says to start over.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { emptyCounters, type Counters, type OpenUpload } from '../engine/index.js';
import { selectionDifferences, type Selection } from './selection.js';

/** Format 2: the file records its selection. Format 1 (no `version`) recorded only bucket and prefix. */
export const RESUME_FILE_VERSION = 2;

export interface CheckpointFile {
  version: typeof RESUME_FILE_VERSION;
  selection: Selection;
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

/** A resume file that cannot be used for this run: the run does not start (exit 2). */
export class ResumeFileError extends Error {}

/** Where this run starts from its resume file. */
export interface ResumeStart {
  /** The file's checkpoint and counters; undefined: from the first key. */
  from?: CheckpointFile;
  /** Uploads the file recorded in this run's bucket, to abort (also when starting over). */
  abandonedUploads: OpenUpload[];
  /** What the user should know (the file was set aside by --restart). */
  notes: string[];
}

const RESTART_HINT =
  'run with the flags it was made with to resume it, or add --restart to start over from the first key';

function parseFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ResumeFileError(`--resume ${path} cannot be read as a resume file: ${(err as Error).message}`);
  }
  const looksLikeOurs =
    typeof parsed === 'object' &&
    parsed !== null &&
    'counters' in parsed &&
    ('selection' in parsed || 'bucket' in parsed);
  // Not even with --restart: a mistyped --resume must not overwrite someone's file.
  if (!looksLikeOurs)
    throw new ResumeFileError(`--resume ${path} is not an s3-encrypt resume file; it is left as it is`);
  return parsed as Record<string, unknown>;
}

/** Why the file cannot be resumed by this run, or undefined when it can. */
function mismatch(path: string, file: Record<string, unknown>, run: Selection): string | undefined {
  const version = file.version;
  if (version === undefined) {
    const where = `s3://${String(file.bucket)}/${String(file.prefix)}`;
    return (
      `--resume ${path} (for ${where}) was written by an older s3-encrypt that did not record the selection it was made for ` +
      `(--sse, --sse-kms-key-id, --include/--exclude, --method, --storage-class, --inventory-manifest, --endpoint-url), ` +
      `so its finished keys cannot be trusted for this run: add --restart to start over from the first key`
    );
  }
  if (version !== RESUME_FILE_VERSION) {
    return `--resume ${path} has format ${JSON.stringify(version)}, this s3-encrypt reads format ${RESUME_FILE_VERSION}: add --restart to start over`;
  }
  const diffs = selectionDifferences(file.selection ?? {}, run);
  if (diffs.length === 0) return undefined;
  return `--resume ${path} was made for another selection (${diffs.join('; ')}): ${RESTART_HINT}`;
}

/** The file's uploads in this run's bucket (only those can be aborted here), and a note on the others. */
function uploadsOf(path: string, file: Record<string, unknown>, bucket: string): [OpenUpload[], string[]] {
  const uploads = Array.isArray(file.openUploads) ? (file.openUploads as OpenUpload[]) : [];
  const fileBucket = (file.selection as Partial<Selection> | undefined)?.bucket ?? file.bucket;
  if (uploads.length === 0 || fileBucket === bucket) return [uploads, []];
  const list = uploads.map((u) => `${u.key} (upload id ${u.uploadId})`).join(', ');
  return [
    [],
    [`--resume ${path} recorded multipart uploads in bucket ${String(fileBucket)} that this run cannot abort: ${list}`],
  ];
}

/**
 * Reads the resume file for this run's selection. Missing: start from the first
 * key. Made for another selection (or by an older version that did not record
 * one): ResumeFileError. `restart` starts over whatever the file was made for
 * (its open uploads in this bucket are still aborted, so nothing leaks).
 */
export function readResumeFile(path: string, run: Selection, restart: boolean): ResumeStart {
  if (!existsSync(path)) return { abandonedUploads: [], notes: [] };
  const file = parseFile(path);
  if (restart) {
    const [abandonedUploads, notes] = uploadsOf(path, file, run.bucket);
    return {
      abandonedUploads,
      notes: [`--restart: ${path} is set aside and rewritten; starting from the first key`, ...notes],
    };
  }
  const why = mismatch(path, file, run);
  if (why !== undefined) throw new ResumeFileError(why);
  const from = file as unknown as CheckpointFile;
  return { from, abandonedUploads: from.openUploads ?? [], notes: [] };
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
    private readonly selection: Selection,
    start: ResumeStart,
  ) {
    this.state = {
      ...(start.from?.startAfter ? { startAfter: start.from.startAfter } : {}),
      counters: start.from?.counters ?? emptyCounters(),
      openUploads: start.abandonedUploads,
    };
  }

  save(): void {
    if (!this.path) return;
    writeCheckpoint(this.path, {
      version: RESUME_FILE_VERSION,
      selection: this.selection,
      ...this.state,
      updatedAt: new Date().toISOString(),
    });
  }
}
