// Planning shards from a large S3 Inventory report: generates a 1,000,000-key
// CSV.gz report locally (keys only, 90% of them under one date prefix), then,
// in a fresh child process so that peak RSS is the planner's alone, streams it
// through inventoryKeys -> KeySampler -> planShards(16) and reports wall time,
// peak RSS and the spread of the planned shards (counted exactly in a second
// pass). Targets (issue 11): < 60 s, < 300 MiB. Then, in another child, what one
// run reading its objects from that report costs before its first object
// (loadRunInventory: every row read, MD5 checked and sorted into S3's order,
// sorted chunks spilled to disk): the worst case, one run over the whole report.
//
//   bash test/env/node.sh npx tsx bench/inventory-plan.ts [--keys 1000000] [--shards 16]
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import { directoryInventorySource, inventoryKeys, readManifest } from '../src/engine/keys/inventory.js';
import { compareKeys, KeySampler, planShards, type Shard } from '../src/engine/keys/shards.js';

import { timedInventoryLoad } from './lib/inventory-load.js';

const BUCKET = 'source-bucket';
const INV = 'inventory-bucket';
const ROWS_PER_FILE = 100_000;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function generate(dir: string, keys: number): Promise<string> {
  const base = `${BUCKET}/config/2026-12-01T01-00Z`;
  await mkdir(join(dir, INV, base, 'data'), { recursive: true });
  const files: { key: string; size: number; MD5checksum: string }[] = [];
  let written = 0;
  for (let f = 0; written < keys; f++) {
    const key = `${base}/data/file-${f}.csv.gz`;
    const path = join(dir, INV, key);
    const gz = createGzip();
    const out = createWriteStream(path);
    gz.pipe(out);
    const rows = Math.min(ROWS_PER_FILE, keys - written);
    for (let i = 0; i < rows; i++) {
      // 90% under one day, the rest over 29 others; hash-like names, as many writers produce.
      const other = 1 + Math.floor(Math.random() * 29);
      const day = Math.random() < 0.9 ? 17 : other >= 17 ? other + 1 : other;
      const name = `data/2026-11-${String(day).padStart(2, '0')}/${randomBytes(8).toString('hex')}.json`;
      if (!gz.write(`"${BUCKET}","${name}"\n`)) await once(gz, 'drain');
    }
    gz.end();
    await once(out, 'close');
    written += rows;
    const buf = readFileSync(path);
    files.push({ key, size: buf.length, MD5checksum: createHash('md5').update(buf).digest('hex') });
  }
  writeFileSync(
    join(dir, INV, base, 'manifest.json'),
    JSON.stringify({
      sourceBucket: BUCKET,
      destinationBucket: `arn:aws:s3:::${INV}`,
      fileFormat: 'CSV',
      fileSchema: 'Bucket, Key',
      files,
    }),
  );
  return `s3://${INV}/${base}/manifest.json`;
}

function shardOf(key: string, shards: Shard[]): number {
  // Binary search over the cut points: the first shard whose endAt is >= key.
  let lo = 0;
  let hi = shards.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const end = shards[mid]!.endAt;
    if (end !== undefined && compareKeys(key, end) > 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

async function plan(dir: string, url: string, n: number): Promise<void> {
  const source = directoryInventorySource(dir);
  const started = performance.now();
  const manifest = await readManifest(source, url);
  const sampler = new KeySampler();
  for await (const e of inventoryKeys(source, { manifest, bucket: BUCKET, prefix: 'data/' })) sampler.add(e.key);
  const shards = planShards(sampler.sample(), n);
  const planSeconds = (performance.now() - started) / 1000;
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;

  // Not part of planning: count each shard's keys exactly to show the spread.
  const sizes = shards.map(() => 0);
  for await (const e of inventoryKeys(source, { manifest, bucket: BUCKET, prefix: 'data/' }))
    sizes[shardOf(e.key, shards)]!++;
  const mean = sampler.count / shards.length;
  console.log(
    JSON.stringify({
      keys: sampler.count,
      shards: shards.length,
      planSeconds: Number(planSeconds.toFixed(1)),
      peakRssMiB: Math.round(peakRssMiB),
      maxOverMean: Number((Math.max(...sizes) / mean).toFixed(3)),
      minOverMean: Number((Math.min(...sizes) / mean).toFixed(3)),
      sizes,
    }),
  );
}

/** One run's inventory load over the whole report (no S3 client: the files are local). */
async function load(dir: string, url: string): Promise<void> {
  const timed = await timedInventoryLoad(dir, url, BUCKET, 'data/');
  console.log(
    JSON.stringify({
      runLoad: {
        ...timed,
        peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      },
    }),
  );
}

const planIdx = process.argv.indexOf('--plan');
const loadIdx = process.argv.indexOf('--load');
if (loadIdx >= 0) {
  await load(process.argv[loadIdx + 1]!, process.argv[loadIdx + 2]!);
} else if (planIdx >= 0) {
  await plan(process.argv[planIdx + 1]!, process.argv[planIdx + 2]!, arg('shards', 16));
} else {
  const keys = arg('keys', 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 's3eo-inventory-bench-'));
  try {
    const t = performance.now();
    const url = await generate(dir, keys);
    console.log(`generated ${keys} keys in ${((performance.now() - t) / 1000).toFixed(1)} s (${dir})`);
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, process.argv[1]!, '--plan', dir, url, '--shards', String(arg('shards', 16))],
      {
        stdio: 'inherit',
      },
    );
    if (child.status !== 0) process.exitCode = child.status ?? 1;
    const loader = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, '--load', dir, url], {
      stdio: 'inherit',
    });
    if (loader.status !== 0) process.exitCode = loader.status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
