// What a real run would cost, from a dry run's counts. Prices are us-east-1
// list prices; they are an estimate to size a job, not a bill.
import type { CostEstimate, Plan } from '../types.js';

const USD_PER_1000_WRITES = 0.005; // LIST, COPY, PUT-class requests
const USD_PER_1000_READS = 0.0004; // HEAD, GET-class requests
const USD_PER_10000_KMS = 0.03;

/**
 * The totals an estimate is made from. A dry run resumed from a checkpoint passes the totals of the
 * whole selection (those saved with the checkpoint plus its own): LIST requests and parts do not add
 * up over pieces of a run, so an estimate is never the sum of its runs' estimates.
 */
export interface CostBasis {
  /** Objects listed. */
  scanned: number;
  /** Of these, left alone by include/exclude (no HEAD). */
  filtered: number;
  /** What a real run would change: objects, bytes, objects by method. */
  planned: { objects: number; bytes: number; byMethod: Record<string, number> };
}

export function estimateCost(plan: Pick<Plan, 'target' | 'multipartPartSize'>, totals: CostBasis): CostEstimate {
  const byMethod = totals.planned.byMethod;
  const copy = byMethod.copy ?? 0;
  const multipart = byMethod['multipart-copy'] ?? 0;
  const updateInPlace = byMethod['update-in-place'] ?? 0;
  const partSize = plan.multipartPartSize ?? 512 * 1024 ** 2;
  // Parts are not known per object in a dry run: size them from the bytes of multipart objects.
  const uploadPartCopy = multipart > 0 ? Math.max(multipart, Math.ceil(totals.planned.bytes / partSize)) : 0;
  const list = Math.ceil(totals.scanned / 1000) + 1;
  const head = totals.scanned - totals.filtered;
  const kmsTarget = plan.target.type !== 'AES256';
  // One data key per written object without a bucket key; a bucket key amortises it away.
  const kms = kmsTarget ? (plan.target.bucketKeyEnabled ? 1 : copy + multipart + updateInPlace) : 0;
  const writes = list + copy + multipart * 2 + uploadPartCopy + updateInPlace;
  const usd =
    (writes / 1000) * USD_PER_1000_WRITES + (head / 1000) * USD_PER_1000_READS + (kms / 10000) * USD_PER_10000_KMS;
  return {
    requests: { list, head, copy, uploadPartCopy, updateInPlace, kms },
    usd: Math.round(usd * 1e6) / 1e6,
  };
}
