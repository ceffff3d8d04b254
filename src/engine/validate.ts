// Checking a plan before any request, so bad input gets a clear answer naming
// the field, whichever front end (CLI, controller) built the plan.
import { JobError } from './s3/errors.js';
import { SSE_TYPES, type Plan } from './types.js';

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function validatePlan(plan: Plan): void {
  const bad = (field: string, why: string): never => {
    throw new JobError('InvalidSpec', `${field}: ${why}`);
  };
  if (!plan.bucket) bad('bucket', 'is required');
  if (!BUCKET_NAME.test(plan.bucket) || plan.bucket.includes('..')) {
    bad('bucket', `"${plan.bucket}" is not a valid S3 bucket name (3-63 of a-z, 0-9, "." and "-")`);
  }
  if (isDirectoryBucket(plan.bucket)) {
    bad(
      'bucket',
      `"${plan.bucket}" is an S3 Express directory bucket (--x-s3, --xa-s3): not supported, because its listing is not in key order and takes no StartAfter, so shards, checkpoints and resumed runs would skip objects`,
    );
  }
  if (!SSE_TYPES.includes(plan.target.type)) {
    bad('encryption.type', `"${plan.target.type}" must be one of ${SSE_TYPES.join(', ')}`);
  }
  if (plan.target.kmsKeyId && plan.target.type === 'AES256') {
    bad('encryption.kmsKeyId', 'is only allowed with aws:kms or aws:kms:dsse');
  }
  if (
    plan.concurrency !== undefined &&
    (!Number.isInteger(plan.concurrency) || plan.concurrency < 1 || plan.concurrency > 1024)
  ) {
    bad('concurrency', 'must be an integer from 1 to 1024');
  }
  if (plan.keys !== undefined && plan.inventoryManifest !== undefined) {
    bad('keys', 'a retry of named keys cannot also read an inventory');
  }
  if (plan.maxObjects !== undefined && (!Number.isInteger(plan.maxObjects) || plan.maxObjects < 1)) {
    bad('maxObjects', 'must be a positive integer');
  }
  if (plan.maxRequestsPerSecond !== undefined && !(plan.maxRequestsPerSecond > 0)) {
    bad('maxRequestsPerSecond', 'must be positive');
  }
  if (plan.multipartThreshold !== undefined && !(plan.multipartThreshold >= 0)) {
    bad('multipartThreshold', 'must be zero or more bytes');
  }
  if (
    plan.method === 'UpdateObjectEncryption' &&
    !(plan.connection.supportsUpdateObjectEncryption ?? isAwsEndpoint(plan.connection.endpoint))
  ) {
    // Some S3-compatible servers take PUT ?encryption for a plain PUT and would
    // overwrite the object with an empty body: never send it unless told it is safe.
    bad('method', 'UpdateObjectEncryption on a custom endpoint needs the endpoint to be declared as supporting it');
  }
  if (
    plan.connection.roleArn !== undefined &&
    !/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/.test(plan.connection.roleArn)
  ) {
    bad(
      'connection.roleArn',
      `"${plan.connection.roleArn}" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)`,
    );
  }
  for (const [field, url] of [
    ['connection.endpoint', plan.connection.endpoint],
    ['connection.kmsEndpoint', plan.connection.kmsEndpoint],
    ['connection.stsEndpoint', plan.connection.stsEndpoint],
  ] as const) {
    if (url === undefined) continue;
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') bad(field, `"${url}" must be an http(s) URL`);
    } catch {
      bad(field, `"${url}" is not a URL`);
    }
  }
}

/** No endpoint (the SDK's own) or one of AWS's S3 endpoints. */
export function isAwsEndpoint(endpoint: string | undefined): boolean {
  if (!endpoint) return true;
  try {
    return /(^|\.)amazonaws\.com(\.cn)?$/.test(new URL(endpoint).hostname);
  } catch {
    return false;
  }
}

/** S3 Express One Zone (--x-s3) and Local Zone (--xa-s3) directory buckets. */
export function isDirectoryBucket(bucket: string): boolean {
  return bucket.endsWith('--x-s3') || bucket.endsWith('--xa-s3');
}
