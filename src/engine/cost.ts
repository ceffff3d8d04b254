// What a real run would cost, from a dry run's counts. Prices are us-east-1
// list prices; they are an estimate to size a job, not a bill.
import type { CostEstimate, Plan, RunResult } from './types.js';

const USD_PER_1000_WRITES = 0.005; // LIST, COPY, PUT-class requests
const USD_PER_1000_READS = 0.0004; // HEAD, GET-class requests
const USD_PER_10000_KMS = 0.03;

export function estimateCost(plan: Plan, result: RunResult): CostEstimate {
  const byMethod = result.planned.byMethod;
  const copy = byMethod.copy ?? 0;
  const multipart = byMethod['multipart-copy'] ?? 0;
  const updateInPlace = byMethod['update-in-place'] ?? 0;
  const partSize = plan.multipartPartSize ?? 512 * 1024 ** 2;
  // Parts are not known per object in a dry run: size them from the bytes of multipart objects.
  const uploadPartCopy = multipart > 0 ? Math.max(multipart, Math.ceil(result.planned.bytes / partSize)) : 0;
  const list = Math.ceil(result.counters.scanned / 1000) + 1;
  const head = result.counters.scanned - result.skippedByReason.filtered;
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
