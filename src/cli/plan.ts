// The plan step of s3-encrypt: what the user asked (flags, target) and where an
// earlier run stopped (the resume file), as the engine's Plan.
import type { Plan } from '../engine/index.js';
import type { CliArgs } from './args.js';
import type { CheckpointFile } from './resume-file.js';

export function planOf(args: CliArgs, resumeFrom: CheckpointFile | undefined): Plan {
  const { flags } = args;
  return {
    bucket: args.bucket,
    prefix: args.prefix,
    target: {
      type: flags.sse,
      ...(flags.sseKmsKeyId ? { kmsKeyId: flags.sseKmsKeyId } : {}),
      ...(flags.bucketKeyEnabled !== undefined ? { bucketKeyEnabled: flags.bucketKeyEnabled } : {}),
    },
    connection: {
      ...(flags.region ? { region: flags.region } : {}),
      ...(flags.endpointUrl ? { endpoint: flags.endpointUrl } : {}),
      ...(flags.kmsEndpointUrl ? { kmsEndpoint: flags.kmsEndpointUrl } : {}),
      ...(flags.forcePathStyle ? { forcePathStyle: true } : {}),
      ...(flags.updateObjectEncryption ? { supportsUpdateObjectEncryption: true } : {}),
    },
    include: flags.include,
    exclude: flags.exclude,
    dryRun: flags.dryrun,
    method: flags.method,
    concurrency: flags.concurrency,
    ...(flags.maxObjects ? { maxObjects: flags.maxObjects } : {}),
    ...(flags.maxRequestsPerSecond ? { maxRequestsPerSecond: flags.maxRequestsPerSecond } : {}),
    ...(flags.storageClass ? { storageClass: flags.storageClass } : {}),
    ...(flags.inventoryManifest ? { inventoryManifest: flags.inventoryManifest } : {}),
    ...(flags.multipartThreshold !== undefined ? { multipartThreshold: flags.multipartThreshold } : {}),
    ...(flags.multipartChunksize !== undefined ? { multipartPartSize: flags.multipartChunksize } : {}),
    ...(resumeFrom?.startAfter ? { startAfter: resumeFrom.startAfter } : {}),
    ...(resumeFrom?.openUploads?.length ? { abandonedUploads: resumeFrom.openUploads } : {}),
  };
}
