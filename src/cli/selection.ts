// What a --resume file's finished keys were finished *for*: the objects chosen
// and what was done to them. A key under the checkpoint is done only for this
// selection; another target, key, filter, method, storage class, inventory or
// endpoint must look at every key again. Like the operator's selection
// fingerprint (controller/checkpoint.ts), but kept in the clear so a refusal
// can name each difference by its flag. Pure, so every case is unit-tested.
import type { Method, SseType } from '../engine/index.js';
import type { CliArgs } from './args.js';

export interface Selection {
  bucket: string;
  prefix: string;
  /** '' = AWS itself. */
  endpoint: string;
  sse: SseType;
  /** '' = the AWS managed key. */
  sseKmsKeyId: string;
  /** null = keep whatever the object has. */
  bucketKeyEnabled: boolean | null;
  include: string[];
  exclude: string[];
  method: Method;
  /** null = the default (only AWS implements UpdateObjectEncryption). */
  updateObjectEncryption: boolean | null;
  /** '' = keep each object's storage class. */
  storageClass: string;
  /** '' = list the bucket. */
  inventoryManifest: string;
}

/** Globs are a set: the order they were typed in does not change the selection. */
const setOf = (globs: string[]): string[] => [...new Set(globs)].sort();

export function selectionOf(args: CliArgs): Selection {
  const { flags } = args;
  return {
    bucket: args.bucket,
    prefix: args.prefix,
    endpoint: flags.endpointUrl ?? '',
    sse: flags.sse,
    sseKmsKeyId: flags.sseKmsKeyId ?? '',
    bucketKeyEnabled: flags.bucketKeyEnabled ?? null,
    include: setOf(flags.include),
    exclude: setOf(flags.exclude),
    method: flags.method,
    updateObjectEncryption: flags.updateObjectEncryption ?? null,
    storageClass: flags.storageClass ?? '',
    inventoryManifest: flags.inventoryManifest ?? '',
  };
}

/** Each field by the words the user typed for it. */
const FLAG_OF: Record<keyof Selection, string> = {
  bucket: 'bucket (s3://BUCKET/…)',
  prefix: 'prefix (s3://…/PREFIX)',
  endpoint: '--endpoint-url',
  sse: '--sse',
  sseKmsKeyId: '--sse-kms-key-id',
  bucketKeyEnabled: '--bucket-key-enabled',
  include: '--include',
  exclude: '--exclude',
  method: '--method',
  updateObjectEncryption: '--update-object-encryption',
  storageClass: '--storage-class',
  inventoryManifest: '--inventory-manifest',
};

function shown(v: unknown): string {
  if (v === null || v === undefined || v === '') return '(not set)';
  if (Array.isArray(v)) return v.length === 0 ? '(none)' : v.map((s) => JSON.stringify(s)).join(' ');
  return typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/**
 * Every field in which the file's selection and this run's differ, as
 * "--sse: file has AES256, this run asks aws:kms". A field the file lacks
 * (written by another version) counts as a difference.
 */
export function selectionDifferences(file: Partial<Selection>, run: Selection): string[] {
  const out: string[] = [];
  for (const field of Object.keys(FLAG_OF) as (keyof Selection)[]) {
    const a = file[field];
    const b = run[field];
    if (JSON.stringify(a ?? null) === JSON.stringify(b)) continue;
    out.push(
      `${FLAG_OF[field]}: file has ${a === undefined ? '(nothing recorded)' : shown(a)}, this run asks ${shown(b)}`,
    );
  }
  return out;
}
