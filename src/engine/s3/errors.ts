// Classifying S3/KMS errors: which end the whole job, which fail one object,
// and which mean "look at the object again".

export class JobError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'JobError';
  }
}

/**
 * A job-level failure that may pass by itself (the endpoint unreachable, a
 * server error that outlasted the SDK's retries): the run fails, but a
 * controller may run the job again from its checkpoint.
 */
export class TransientError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/**
 * The record a later run depends on (an open multipart upload's id) could not be
 * written: the object's write does not go on, and the object fails as transient
 * (looked at again later, never a verdict on the object).
 */
export class CheckpointWriteFailed extends TransientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CheckpointWriteFailed', message, options);
    this.name = 'CheckpointWriteFailed';
  }
}

interface AwsLikeError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
}

function asAws(err: unknown): AwsLikeError {
  return typeof err === 'object' && err !== null ? err : {};
}

export function errorCode(err: unknown): string {
  const e = asAws(err);
  return e.Code ?? e.name ?? e.code ?? 'Unknown';
}

export function httpStatus(err: unknown): number | undefined {
  const e = asAws(err);
  return e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error && err.message) return err.message;
  return String(err);
}

/**
 * The object is not the one that was inspected: 412 for a false condition, or
 * 409 ConditionalRequestConflict (AWS: a concurrent write raced our conditional
 * one; its advice is to try again). Either way: look at the object again.
 */
export function isPreconditionFailed(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'PreconditionFailed' || code === 'ConditionalRequestConflict' || httpStatus(err) === 412;
}

export function isNotFound(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'NoSuchKey' || code === 'NotFound' || (httpStatus(err) === 404 && code !== 'NoSuchBucket');
}

/** Errors that mean no object of this job can succeed: stop instead of failing them one by one. */
const JOB_LEVEL_CODES = new Set([
  'NoSuchBucket',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'RequestTimeTooSkewed',
  'AccountProblem',
  'AllAccessDisabled',
  // The address guard refused the endpoint's address (address-guard.ts): every request would be refused.
  'EndpointNotAllowed',
]);

const KMS_UNUSABLE_CODES = new Set([
  'KMS.DisabledException',
  'KMS.KMSInvalidStateException',
  'KMS.NotFoundException',
  'KMS.AccessDeniedException',
  'DisabledException',
  'KMSInvalidStateException',
  'KMS.InvalidKeyUsageException',
]);

/**
 * Credentials or bucket errors: no object of the job can succeed. KMS errors
 * are not here: S3 raises them for the source object's key (Decrypt) as well as
 * for the target key, so only a check of the target key makes them job-level.
 */
export function isJobLevel(err: unknown): boolean {
  return JOB_LEVEL_CODES.has(errorCode(err));
}

/**
 * Job-level codes that one request can also earn on its own: a signature that
 * does not match may be a server's canonicalisation of one odd key or header
 * (non-ASCII header bytes, a key a server normalises), not the credentials.
 * Such an error ends the job only when another request fails too (the run asks
 * HeadBucket, as it checks the target key after a KMS error).
 */
export function needsSecondOpinion(err: unknown): boolean {
  return errorCode(err) === 'SignatureDoesNotMatch';
}

/** S3 could not use a KMS key for this object: the target key, or the key the object is encrypted under now. */
export function isKmsUnusable(err: unknown): boolean {
  return KMS_UNUSABLE_CODES.has(errorCode(err));
}

/** Codes by which an S3-compatible server refuses an operation it does not implement. */
export function isNotImplemented(err: unknown): boolean {
  const code = errorCode(err);
  const status = httpStatus(err);
  return code === 'NotImplemented' || code === 'MethodNotAllowed' || status === 501 || status === 405;
}

export function isAccessDenied(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'AccessDenied' || code === 'AccessDeniedException';
}

/** Network failures, timeouts and throttling: the request may well succeed a little later. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'SlowDown',
  'ServiceUnavailable',
  'Throttling',
  'ThrottlingException',
  // S3 passes KMS's throttling on with the KMS. prefix (400): it passes like any throttling.
  'KMS.ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  // Ours: the run's own record could not be written (the controller's status, the CLI's file).
  'CheckpointWriteFailed',
]);

/**
 * Whether an error that came out of the SDK (after its own retries) is worth
 * another try later. The SDK's retries span a few seconds at most, and stop at
 * once when its retry quota is spent (a burst of errors): a network outage of
 * seconds, or throttling that outlasts them, must not fail objects. A 500 is
 * tried again only when the SDK gave up before using its attempts: one that
 * survived all of them is the server's answer (e.g. SeaweedFS's KMS errors).
 * A TransientError, or any error marked `retryable: true`, is transient too.
 */
export function isTransient(err: unknown, maxAttempts: number): boolean {
  // Our own "may pass by itself" errors (e.g. a record of an upload that could not be written yet).
  if (err instanceof TransientError || (err as { retryable?: unknown } | undefined)?.retryable === true) return true;
  const e = asAws(err);
  if (TRANSIENT_CODES.has(errorCode(err)) || (e.code !== undefined && TRANSIENT_CODES.has(e.code))) return true;
  const status = httpStatus(err);
  if (status === 502 || status === 503 || status === 504 || status === 429) return true;
  const attempts = (err as { $metadata?: { attempts?: number } } | undefined)?.$metadata?.attempts ?? 1;
  return status === 500 && attempts < maxAttempts;
}

/** SDK attempts behind an error (1 when the SDK did not say). */
export function attemptsOf(err: unknown): number {
  return (
    (typeof err === 'object' && err !== null
      ? (err as { $metadata?: { attempts?: number } }).$metadata?.attempts
      : undefined) ?? 1
  );
}

/** Jittered exponential backoff for another try: 1 s, 2 s, 4 s ... capped at 10 s. Resolves false when aborted. */
export function backoff(round: number, signal?: AbortSignal): Promise<boolean> {
  const ms = Math.min(10_000, 1000 * 2 ** round) * (0.5 + Math.random() / 2);
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** How long an object (or a listing page) keeps being tried again through transient errors. */
export const TRANSIENT_RETRY_MS = 120_000;
