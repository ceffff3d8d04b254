// Sorting a 5,000,000-row S3 Inventory report in a pod with the chart's defaults
// (issue 20 scenario 7). Generates a CSV.gz report locally with every column a
// real one has (Bucket, Key, Size, StorageClass, EncryptionStatus,
// BucketKeyStatus), then, each in a fresh child process so that peak RSS is the
// run's alone:
//   1. one run over the whole report (loadRunInventory: every row read, MD5
//      checked, sorted, spilled, then merged) with the chart's spill settings
//      (TMPDIR on its own directory, S3EO_SPILL_LIMIT_MIB=2048): time, peak RSS,
//      spill bytes; then the same in a 192 MiB V8 heap (what the sort keeps);
//   2. the same with the old room (a 64 MiB /tmp): it must fail SpillSpaceExhausted
//      at its first chunk, before it fills anything.
// No server is needed. Writes bench/results/<time>-inventory-sort.json.
//
//   bash test/env/node.sh npx tsx bench/inventory-sort.ts [--rows 5000000]
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';

import { timedInventoryLoad } from './lib/inventory-load.js';

const BUCKET = 'source-bucket';
const INV = 'inventory-bucket';
const ROWS_PER_FILE = 250_000;
const ENCRYPTION = ['SSE-S3', 'SSE-KMS', 'NOT-SSE'];

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Rows as S3 writes them: every field quoted, keys of a busy log bucket (about 45 characters). */
async function generate(dir: string, rows: number): Promise<{ url: string; reportBytes: number }> {
  const base = `${BUCKET}/config/2026-12-01T01-00Z`;
  mkdirSync(join(dir, INV, base, 'data'), { recursive: true });
  const files: { key: string; size: number; MD5checksum: string }[] = [];
  let written = 0;
  for (let f = 0; written < rows; f++) {
    const key = `${base}/data/file-${f}.csv.gz`;
    const path = join(dir, INV, key);
    const gz = createGzip();
    const out = createWriteStream(path);
    gz.pipe(out);
    const n = Math.min(ROWS_PER_FILE, rows - written);
    const names = randomBytes(8 * n).toString('hex');
    // Written 10,000 rows at a time: one write per row makes the generator, not the sort, the slow part.
    for (let from = 0; from < n; from += 10_000) {
      let batch = '';
      for (let i = from; i < Math.min(n, from + 10_000); i++) {
        const day = String(1 + ((written + i) % 30)).padStart(2, '0');
        const name = `data/2026-11-${day}/${names.slice(16 * i, 16 * i + 16)}.json.gz`;
        batch += `"${BUCKET}","${name}","${1000 + i}","STANDARD","${ENCRYPTION[i % 3]}","DISABLED"\n`;
      }
      if (!gz.write(batch)) await once(gz, 'drain');
    }
    gz.end();
    await once(out, 'close');
    written += n;
    const buf = readFileSync(path);
    files.push({ key, size: buf.length, MD5checksum: createHash('md5').update(buf).digest('hex') });
  }
  writeFileSync(
    join(dir, INV, base, 'manifest.json'),
    JSON.stringify({
      sourceBucket: BUCKET,
      destinationBucket: `arn:aws:s3:::${INV}`,
      fileFormat: 'CSV',
      fileSchema: 'Bucket, Key, Size, StorageClass, EncryptionStatus, BucketKeyStatus',
      creationTimestamp: String(Date.parse('2026-12-01T01:00:00Z')),
      files,
    }),
  );
  return { url: `s3://${INV}/${base}/manifest.json`, reportBytes: files.reduce((s, f) => s + f.size, 0) };
}

/** One run's inventory load over the whole report, in this (child) process; prints one JSON line. */
async function load(dir: string, url: string): Promise<void> {
  const started = performance.now();
  try {
    const { spilledBytes, ...timed } = await timedInventoryLoad(dir, url, BUCKET, 'data/');
    console.log(
      JSON.stringify({
        ...timed,
        spillMiB: Number((spilledBytes / 2 ** 20).toFixed(1)),
        spillBytesPerRow: Number((spilledBytes / timed.rows).toFixed(1)),
        peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      }),
    );
  } catch (err) {
    console.log(
      JSON.stringify({
        failed: (err as { reason?: string }).reason ?? String(err),
        message: (err as Error).message,
        afterSeconds: Number(((performance.now() - started) / 1000).toFixed(1)),
        peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      }),
    );
  }
}

/** Runs `load` in a child with the pod's environment; returns its JSON line. */
function child(dir: string, url: string, env: Record<string, string>): Record<string, unknown> {
  const run = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, '--load', dir, url], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = run.stdout.trim().split('\n').at(-1) ?? '';
  return { env, ...(JSON.parse(line || '{}') as Record<string, unknown>) };
}

const loadIdx = process.argv.indexOf('--load');
if (loadIdx >= 0) {
  await load(process.argv[loadIdx + 1]!, process.argv[loadIdx + 2]!);
} else {
  const rows = arg('rows', 5_000_000);
  const dir = mkdtempSync(join(tmpdir(), 's3eo-inventory-sort-bench-'));
  try {
    const t = performance.now();
    const { url, reportBytes } = await generate(dir, rows);
    const generateSeconds = Number(((performance.now() - t) / 1000).toFixed(1));
    console.log(`generated ${rows} rows (${(reportBytes / 2 ** 20).toFixed(1)} MiB gzipped) in ${generateSeconds} s`);
    const spill = join(dir, 'spill');
    mkdirSync(spill);
    const chart = child(dir, url, { TMPDIR: spill, S3EO_SPILL_LIMIT_MIB: '2048' });
    console.log('chart defaults:', JSON.stringify(chart));
    // The same in a small heap: what the sort keeps is one chunk, the rest of the RSS above is V8's lazy GC.
    const heap = child(dir, url, {
      TMPDIR: spill,
      S3EO_SPILL_LIMIT_MIB: '2048',
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=192`.trim(),
    });
    console.log('chart defaults, 192 MiB heap:', JSON.stringify(heap));
    const old = child(dir, url, { TMPDIR: spill, S3EO_SPILL_LIMIT_MIB: '64' });
    console.log('the old 64 MiB /tmp:', JSON.stringify(old));
    const result = {
      bench: 'inventory-sort',
      date: new Date().toISOString(),
      rows,
      reportMiB: Number((reportBytes / 2 ** 20).toFixed(1)),
      generateSeconds,
      cores: (await import('node:os')).cpus().length,
      loadAverage: (await import('node:os')).loadavg().map((l) => Number(l.toFixed(1))),
      chartDefaults: chart,
      chartDefaultsHeap192MiB: heap,
      old64MiB: old,
    };
    const out = join('bench', 'results', `${result.date.slice(0, 19).replace(/:/g, '-')}-inventory-sort.json`);
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
