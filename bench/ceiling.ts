// The ceiling contender: list the prefix and send one CopyObject per object,
// nothing else (no HEAD, no ACL, no verification), at high concurrency, with
// the same SDK the engine uses. It shows what the server can take; it is not
// a correct re-encryption: without a HEAD it cannot resend what REPLACE drops
// (SeaweedFS refuses an in-place COPY), so the check reports what it loses.
//
//   node --import tsx bench/ceiling.ts BUCKET PREFIX CONCURRENCY KMS_KEY_ID
// Endpoint and credentials from S3EO_BENCH_ENDPOINT and the AWS_* variables.
import { CopyObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

const [bucket = '', prefix = '', concurrencyArg = '128', kmsKeyId = ''] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const s3 = new S3Client({
  endpoint: process.env.S3EO_BENCH_ENDPOINT,
  region: process.env.AWS_REGION ?? 'us-east-1',
  forcePathStyle: true,
  retryMode: 'adaptive',
  maxAttempts: 8,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

const started = performance.now();
let copied = 0;
let failed = 0;
const inFlight = new Set<Promise<void>>();
let token: string | undefined;
do {
  const page = await s3.send(
    new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }),
  );
  for (const item of page.Contents ?? []) {
    const key = item.Key ?? '';
    const p = s3
      .send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: key,
          CopySource: `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
          MetadataDirective: 'REPLACE',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: kmsKeyId,
        }),
      )
      .then(
        () => void copied++,
        () => void failed++,
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  }
  token = page.IsTruncated ? page.NextContinuationToken : undefined;
} while (token);
await Promise.all(inFlight);
s3.destroy();
process.stdout.write(`${JSON.stringify({ copied, failed, seconds: (performance.now() - started) / 1000 })}\n`);
process.exit(failed > 0 ? 1 : 0);
