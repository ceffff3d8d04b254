// What a HEAD error means. S3 answers HEAD without a body, so the SDK can only
// name a 400 or 403 "BadRequest"/"Forbidden"/"Unknown": an SSE-C object read
// without its key, an expired session token, a bad signature and clock skew
// all look alike. A ranged GET of one byte carries the XML error body, and so
// the real code: only an SSE-C refusal is a skip, anything else is an error.
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { errorCode, errorMessage, httpStatus, isJobLevel } from '../s3/errors.js';

export type HeadErrorMeaning =
  /** Encrypted with a customer-provided key: cannot be read or copied without it. */
  | { kind: 'sse-c'; detail: string }
  /** No object of the job can succeed (credentials, token, clock): stop the job with this error. */
  | { kind: 'job'; error: unknown }
  /** This object fails, with the clearest error known. */
  | { kind: 'object'; error: unknown };

/** HEAD errors whose meaning needs the error body. */
export function needsExplaining(err: unknown): boolean {
  const status = httpStatus(err);
  return status === 400 || status === 403;
}

/**
 * S3's refusal to read an SSE-C object without its key: 400 InvalidRequest "The
 * object was stored using a form of Server Side Encryption. The correct
 * parameters must be provided to retrieve the object." Servers word it a little
 * differently; all name server-side encryption or the customer key.
 */
export function isSseCRefusal(err: unknown): boolean {
  const code = errorCode(err);
  if (httpStatus(err) !== 400 || !['InvalidRequest', 'InvalidArgument', 'BadRequest'].includes(code)) return false;
  return /server[\s-]?side[\s-]?encryption|customer|sse-?c/i.test(errorMessage(err));
}

export async function explainHeadError(
  s3: S3Client,
  bucket: string,
  key: string,
  headErr: unknown,
  signal?: AbortSignal,
): Promise<HeadErrorMeaning> {
  if (isJobLevel(headErr)) return { kind: 'job', error: headErr };
  let getErr: unknown;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: 'bytes=0-0' }), {
      abortSignal: signal,
    });
    // One byte; read it so the connection is reused.
    await out.Body?.transformToByteArray().catch(() => undefined);
  } catch (err) {
    getErr = err;
  }
  if (getErr === undefined) {
    // The GET works where HEAD did not: not the object's encryption; keep HEAD's answer.
    return { kind: 'object', error: headErr };
  }
  if (isSseCRefusal(getErr))
    return { kind: 'sse-c', detail: `encrypted with a customer-provided key (SSE-C): ${errorMessage(getErr)}` };
  if (isJobLevel(getErr)) return { kind: 'job', error: getErr };
  return { kind: 'object', error: getErr };
}
