// Turning an EncryptionJob into an engine Plan: the one place where Kubernetes
// words meet engine words.
import type { Plan } from '../engine/index.js';
import type { EncryptionJob } from './api.js';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export function planFor(
  job: EncryptionJob,
  credentials: Credentials | undefined,
  startAfter: string | undefined,
): Plan {
  const spec = job.spec;
  const conn = spec.connection ?? {};
  return {
    bucket: spec.bucket,
    prefix: spec.prefix ?? '',
    target: {
      type: spec.encryption.type,
      ...(spec.encryption.kmsKeyId ? { kmsKeyId: spec.encryption.kmsKeyId } : {}),
      ...(spec.encryption.bucketKeyEnabled !== undefined ? { bucketKeyEnabled: spec.encryption.bucketKeyEnabled } : {}),
    },
    connection: {
      ...(conn.region ? { region: conn.region } : {}),
      ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
      ...(conn.kmsEndpoint ? { kmsEndpoint: conn.kmsEndpoint } : {}),
      ...(conn.forcePathStyle !== undefined ? { forcePathStyle: conn.forcePathStyle } : {}),
      ...(credentials ? { credentials } : {}),
      ...(conn.roleArn ? { roleArn: conn.roleArn } : {}),
      ...(conn.externalId ? { externalId: conn.externalId } : {}),
      ...(conn.stsEndpoint ? { stsEndpoint: conn.stsEndpoint } : {}),
      ...(conn.supportsUpdateObjectEncryption !== undefined
        ? { supportsUpdateObjectEncryption: conn.supportsUpdateObjectEncryption }
        : {}),
    },
    dryRun: spec.dryRun ?? false,
    ...(spec.include?.length ? { include: spec.include } : {}),
    ...(spec.exclude?.length ? { exclude: spec.exclude } : {}),
    ...(spec.maxObjects ? { maxObjects: spec.maxObjects } : {}),
    ...(spec.method ? { method: spec.method } : {}),
    ...(spec.maxRequestsPerSecond ? { maxRequestsPerSecond: spec.maxRequestsPerSecond } : {}),
    ...(spec.storageClass ? { storageClass: spec.storageClass } : {}),
    ...(spec.source?.inventory?.manifest ? { inventoryManifest: spec.source.inventory.manifest } : {}),
    concurrency: spec.concurrency ?? 32,
    ...(startAfter ? { startAfter } : {}),
    maxFailuresKept: 20,
  };
}
