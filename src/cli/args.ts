// The parse step of s3-encrypt (parse → plan → run → print): the command line,
// in the AWS CLI's words, turned into flags and a target. Nothing here talks to S3.
import { Command, InvalidArgumentError, Option } from 'commander';
import { SSE_TYPES, type Method, type SseType } from '../engine/index.js';

export interface Flags {
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
  restart: boolean;
  retryFailed?: string;
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

/** What the user asked for: the flags and the s3://bucket/prefix. */
export interface CliArgs {
  flags: Flags;
  bucket: string;
  prefix: string;
}

/** Bad input the user can fix (a flag, a resume file, a report): the run does not start, exit 2. */
export class UsageError extends Error {}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/** S3's limits: a part is 5 MiB to 5 GiB (the last may be smaller); a single copy is at most 5 GiB. */
const MIN_PART = 5 * MiB;
const MAX_PART = 5 * GiB;
const MAX_SINGLE_COPY = 5 * GiB;

export function intArg(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

export function sizeArg(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a size (for example 8MB, 5GiB, 1048576)`);
  const unit = (m[2] ?? 'B').toUpperCase().replace('IB', 'B');
  const mult = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[unit] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

/** --multipart-chunksize: refused here, not after every part was copied (S3 then says EntityTooSmall). */
export function partSizeArg(v: string): number {
  const n = sizeArg(v);
  if (n < MIN_PART || n > MAX_PART) throw new InvalidArgumentError(`${v} is outside S3's part sizes, 5MiB to 5GiB`);
  return n;
}

/** --multipart-threshold: an object above 5 GiB cannot be copied in one request. */
export function thresholdArg(v: string): number {
  const n = sizeArg(v);
  if (n > MAX_SINGLE_COPY)
    throw new InvalidArgumentError(`${v} is above 5GiB, the largest object S3 copies in one request`);
  return n;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m || !m[1]) throw new Error(`"${url}" is not an s3://bucket/prefix URL`);
  return { bucket: m[1], prefix: m[2] ?? '' };
}

/** Which objects, and what to do to them. */
function addSelectionOptions(program: Command): Command {
  return program
    .addOption(
      new Option('--sse <type>', 'target server-side encryption').choices([...SSE_TYPES]).makeOptionMandatory(),
    )
    .option('--sse-kms-key-id <key>', 'KMS key for aws:kms*: key id, alias/NAME or ARN (default: the AWS managed key)')
    .option('--bucket-key-enabled', 'use an S3 Bucket Key for SSE-KMS')
    .option('--no-bucket-key-enabled', 'turn the S3 Bucket Key off')
    .option('--dryrun', 'count what would change; change nothing', false)
    .option('--include <glob>', 'only keys matching (relative to the prefix; repeatable)', collect, [])
    .option('--exclude <glob>', 'leave keys matching alone (repeatable)', collect, [])
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
    );
}

/** How the run goes: its pace and size, its resume file and its report. */
function addRunOptions(program: Command): Command {
  return program
    .option('--concurrency <n>', 'objects in flight', intArg('--concurrency'), 32)
    .option(
      '--max-objects <n>',
      "stop after this many objects (try on a subset first; with --resume, counted over the file's life)",
      intArg('--max-objects'),
    )
    .option('--max-requests-per-second <n>', 'cap on S3 requests per second', intArg('--max-requests-per-second'))
    .option(
      '--multipart-threshold <size>',
      'copy objects larger than this part by part (at most and default 5GiB)',
      thresholdArg,
    )
    .option(
      '--multipart-chunksize <size>',
      'part size for objects that were not uploaded in parts (5MiB to 5GiB, default 512MiB)',
      partSizeArg,
    )
    .option(
      '--resume <file>',
      'checkpoint file: resume from it if it exists, keep it up to date; it records the selection (target, key, filters, method, storage class, inventory, endpoint) and a run that asks for another is refused',
    )
    .option(
      '--restart',
      'with --resume: start over from the first key whatever the file was made for (it is rewritten; uploads it left open are aborted)',
      false,
    )
    .option(
      '--retry-failed <report>',
      "look again at exactly the keys a report (this tool's --report, or an operator job's report part or manifest in S3) says failed; not with --resume or --inventory-manifest",
    )
    .option(
      '--report <dest>',
      'write a per-object report (failures and skips) to a file or s3://bucket/key (.csv or .jsonl)',
    )
    .option('--report-all', 'report every object, not only failures and skips', false);
}

function addConnectionOptions(program: Command): Command {
  return program
    .option('--endpoint-url <url>', 'S3-compatible endpoint')
    .option('--kms-endpoint-url <url>', 'KMS-compatible endpoint')
    .option('--region <region>', 'AWS region')
    .option('--force-path-style', 'address buckets as endpoint/bucket')
    .option('--no-progress', 'no progress bar even on a terminal')
    .option('--json', 'print only the JSON summary', false);
}

function buildProgram(): Command {
  const program = new Command()
    .name('s3-encrypt')
    .description('Re-encrypt the objects under an S3 prefix in place, keeping everything else about them.')
    .argument('<s3url>', 's3://bucket/prefix to re-encrypt');
  addConnectionOptions(addRunOptions(addSelectionOptions(program)));
  return program
    .addHelpText(
      'after',
      "\nExit codes: 0 all done, 1 some objects failed, 2 the run could not start or failed,\n3 stopped by SIGINT/SIGTERM before the end (run again with the same --resume file to go on).\n\n--max-objects with --resume counts over the life of the resume file, not per run.\n--retry-failed prints what the retry changed: of the report's failed keys, how many are\nnow at the target, still failed, or gone.",
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
}

/** Flags that make no sense together: refused before anything is read. */
function checkCombinations(flags: Flags): void {
  if (flags.restart && !flags.resume) throw new UsageError('--restart needs --resume FILE (the file to start over)');
  if (flags.retryFailed && flags.resume)
    throw new UsageError(
      '--retry-failed cannot be combined with --resume: a retry looks once at the keys of its report (run it again with the new report to retry what still fails)',
    );
  if (flags.retryFailed && flags.inventoryManifest)
    throw new UsageError('--retry-failed cannot be combined with --inventory-manifest: the report names the keys');
}

/**
 * The command line as flags and a target, or the exit code to end with: 0 after
 * --help, 2 for a bad command line (commander has said why on stderr, or we do).
 */
export function parseArgs(argv: string[]): CliArgs | number {
  const program = buildProgram();
  try {
    program.parse(argv, { from: 'user' });
    const flags = program.opts<Flags>();
    checkCombinations(flags);
    return { flags, ...parseS3Url(program.args[0] ?? '') };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return 0;
    if (!code?.startsWith('commander.')) process.stderr.write(`s3-encrypt: ${(err as Error).message}\n`);
    return 2;
  }
}
