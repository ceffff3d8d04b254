// The EncryptionJob API as TypeScript types (mirrors crds/).
import type { KubernetesObject } from '@kubernetes/client-node';

export const GROUP = 's3encryption.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'encryptionjobs';
export const KIND = 'EncryptionJob';
export const FINALIZER = 's3encryption.dev/finalizer';

export interface EncryptionJobSpec {
  bucket: string;
  prefix?: string;
  encryption: { type: 'AES256' | 'aws:kms' | 'aws:kms:dsse'; kmsKeyId?: string; bucketKeyEnabled?: boolean };
  connection?: {
    region?: string;
    endpoint?: string;
    kmsEndpoint?: string;
    forcePathStyle?: boolean;
    credentialsSecretRef?: { name: string };
    roleArn?: string;
    externalId?: string;
    stsEndpoint?: string;
    supportsUpdateObjectEncryption?: boolean;
  };
  dryRun?: boolean;
  suspend?: boolean;
  concurrency?: number;
  report?: { destination: string; all?: boolean };
  include?: string[];
  exclude?: string[];
  maxObjects?: number;
  method?: 'Auto' | 'Copy' | 'UpdateObjectEncryption';
  maxRequestsPerSecond?: number;
  storageClass?: string;
}

export type ConditionType = 'Progressing' | 'Complete' | 'Failed' | 'Suspended';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type Phase = 'Pending' | 'Running' | 'Suspended' | 'Complete' | 'Failed';

export interface JobProgress {
  scanned: number;
  encrypted: number;
  alreadyEncrypted: number;
  skipped: number;
  failed: number;
  bytesEncrypted: number;
  /** For display: percent of the total once counted, else at target / listed. */
  summary?: string;
  /** Objects under the prefix, counted beside the run. */
  total?: number;
  skippedByReason?: Record<string, number>;
  wouldEncrypt?: number;
  wouldEncryptBytes?: number;
  estimatedCostUSD?: string;
}

export interface EncryptionJobStatus {
  observedGeneration?: number;
  phase?: Phase;
  conditions?: Condition[];
  startTime?: string;
  completionTime?: string | null;
  progress?: JobProgress;
  checkpoint?: {
    startAfter?: string;
    updatedAt?: string;
    /** Counters of the objects up to startAfter: the base of a resumed run (progress also counts finished objects after it). */
    progress?: JobProgress;
    /** Multipart uploads in progress; the next run aborts those a crashed run left. */
    openUploads?: { key: string; uploadId: string }[];
  } | null;
  kmsKeyArn?: string;
  noncurrentVersions?: number;
  recentFailures?: { key: string; operation: string; code: string; message: string }[];
  report?: string;
  /** Runs that ended on a passing error and were started again. */
  retries?: number;
}

export interface EncryptionJob extends KubernetesObject {
  spec: EncryptionJobSpec;
  status?: EncryptionJobStatus;
}

export function jobKey(job: KubernetesObject): string {
  return `${job.metadata?.namespace ?? ''}/${job.metadata?.name ?? ''}`;
}
