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

interface AwsLikeError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
}

function asAws(err: unknown): AwsLikeError {
  return typeof err === 'object' && err !== null ? (err as AwsLikeError) : {};
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

export function isPreconditionFailed(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'PreconditionFailed' || httpStatus(err) === 412;
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
  'AccountProblem',
  'AllAccessDisabled',
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

export function isJobLevel(err: unknown): boolean {
  const code = errorCode(err);
  return JOB_LEVEL_CODES.has(code) || KMS_UNUSABLE_CODES.has(code);
}

export function isKmsUnusable(err: unknown): boolean {
  return KMS_UNUSABLE_CODES.has(errorCode(err));
}
