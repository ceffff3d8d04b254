// Resolving the target KMS key once per run: aliases and key ids become the key
// ARN that S3 reports on HEAD, and an unusable key stops the run before any
// object is touched.
import { DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { errorCode, errorMessage, JobError, TransientError } from './errors.js';
import type { TargetEncryption } from '../types.js';

export interface ResolvedTarget extends TargetEncryption {
  /** Key ARN (aws:kms*): what HEAD should report once an object is at the target. */
  kmsKeyArn?: string;
  /** The key's bare id, since some S3 servers report that instead of the ARN. */
  kmsKeyBareId?: string;
}

/** DescribeKey errors that need a person, by the reason the job fails with. */
const JOB_LEVEL_KMS_CODES: Record<string, string> = {
  NotFoundException: 'KMSKeyNotFound',
  AccessDeniedException: 'KMSAccessDenied',
  UnrecognizedClientException: 'KMSAccessDenied',
  InvalidSignatureException: 'KMSAccessDenied',
  IncompleteSignatureException: 'KMSAccessDenied',
  DisabledException: 'KMSKeyDisabled',
  KMSInvalidStateException: 'KMSKeyDisabled',
  InvalidArnException: 'KMSKeyNotFound',
  ValidationException: 'KMSKeyNotFound',
};

export async function resolveTarget(kms: KMSClient, target: TargetEncryption): Promise<ResolvedTarget> {
  if (target.type === 'AES256') {
    if (target.kmsKeyId) {
      throw new JobError('InvalidSpec', 'encryption.kmsKeyId is only allowed with aws:kms or aws:kms:dsse');
    }
    return { ...target };
  }
  const keyId = target.kmsKeyId ?? 'alias/aws/s3';
  let meta;
  try {
    meta = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata;
  } catch (err) {
    if (err instanceof JobError) throw err; // the endpoint refused by the address guard: not an outage
    const code = errorCode(err);
    if (!target.kmsKeyId && code === 'NotFoundException') {
      // AWS creates the managed key aws/s3 on first use: no object can have it yet.
      return { ...target };
    }
    const message = `KMS key "${keyId}": DescribeKey failed: ${code}: ${errorMessage(err)}`;
    const reason = JOB_LEVEL_KMS_CODES[code];
    if (reason) throw new JobError(reason, message, { cause: err });
    // The KMS endpoint unreachable or failing: may pass, the run can be tried again.
    throw new TransientError('KMSUnreachable', message, { cause: err });
  }
  if (!meta?.Arn || !meta.KeyId) {
    throw new JobError('KMSKeyUnusable', `KMS key "${keyId}": DescribeKey returned no ARN`);
  }
  if (meta.Enabled === false || (meta.KeyState && meta.KeyState !== 'Enabled')) {
    throw new JobError(
      'KMSKeyDisabled',
      `KMS key "${keyId}" (${meta.Arn}) is ${meta.KeyState ?? 'disabled'}: enable it or choose another key`,
    );
  }
  if (meta.KeyUsage && meta.KeyUsage !== 'ENCRYPT_DECRYPT') {
    throw new JobError('KMSKeyUnusable', `KMS key "${keyId}" has usage ${meta.KeyUsage}, S3 needs ENCRYPT_DECRYPT`);
  }
  if (meta.KeySpec && meta.KeySpec !== 'SYMMETRIC_DEFAULT') {
    throw new JobError('KMSKeyUnusable', `KMS key "${keyId}" is ${meta.KeySpec}, S3 needs a symmetric key`);
  }
  return { ...target, kmsKeyArn: meta.Arn, kmsKeyBareId: meta.KeyId };
}
