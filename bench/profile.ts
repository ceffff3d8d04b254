// CPU profile of the CLI on small objects: where the client's CPU goes per area,
// and how many requests each object cost (from the run's request counters).
//
//   bash test/env/node.sh npx tsx bench/profile.ts [--server seaweedfs|moto] [--objects 3000] [--no-prof] [--ceiling] [--owner-enforced]
//   bash test/env/node.sh npx tsx bench/profile.ts --summarise FILE.cpuprofile
//
// Starts the server through the test harness, writes the bench's small set, runs
// `node --cpu-prof dist/cli.js` on it and prints a table of self time by area. The
// raw profile stays in a temporary directory (not committed).
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutBucketOwnershipControlsCommand, S3Client } from '@aws-sdk/client-s3';
import { startMoto, startSeaweed } from '../test/harness/s3servers.js';
import { ROOT } from './lib/contenders.js';
import { createCopy, smallSet } from './lib/datasets.js';
import { runMeasured } from './lib/measure.js';

const argv = process.argv.slice(2);
const flag = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? def) : def;
};
const server = flag('server', 'seaweedfs');
const objects = Number(flag('objects', '3000'));
const profile = !argv.includes('--no-prof');
const withCeiling = argv.includes('--ceiling');
/** ACLs disabled on the bucket (the AWS default for new buckets): no per-object ACL read. */
const ownerEnforced = argv.includes('--owner-enforced');
let ceilingCpu: number | undefined;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The area a function belongs to, from its script URL. */
export function areaOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'native / event loop';
  if (/signature-v4|util-hex|hash-node|sha256|node:crypto|node:internal\/crypto/.test(url)) return 'signing';
  if (/fast-xml-parser|xml-builder|xml_parser|XmlParser|strnum/.test(url)) return 'XML parsing';
  if (/middleware-endpoint|util-endpoints|endpoint/i.test(url)) return 'SDK endpoint resolution';
  if (
    /node-http-handler|node:_http|node:http|node:net|node:tls|node:internal\/stream|node:stream|node:events/.test(url)
  )
    return 'HTTP / sockets / streams';
  if (/middleware-flexible-checksums|checksum/i.test(url)) return 'SDK checksums';
  if (/@smithy|@aws-sdk|@aws-crypto|tslib/.test(url)) return 'SDK middleware / (de)serialisers';
  if (/\/dist\/(log|metrics)\.js|pino|progress/.test(url)) return 'our logging / progress';
  if (/\/dist\//.test(url)) return 'our engine';
  if (url.startsWith('node:')) return 'node internals (other)';
  if (url === '') return 'native builtins';
  return 'other';
}

/**
 * dist/*.js is one bundle per entry point (scripts/bundle.mjs): every frame of the CLI, SDK and
 * all, has the bundle's URL. Its source map (written next to it) gives each frame's original
 * module back, so that the areas below still tell the SDK, signing and our engine apart.
 */
function originalFrames(): (frame: ProfileNode['callFrame']) => { url: string; line: number } {
  const maps = new Map<string, SourceMap | undefined>();
  return (frame) => {
    const asIs = { url: frame.url, line: frame.lineNumber + 1 };
    if (!frame.url.startsWith('file://') || !frame.url.endsWith('.js')) return asIs;
    let map = maps.get(frame.url);
    if (!maps.has(frame.url)) {
      const file = `${fileURLToPath(frame.url)}.map`;
      map = existsSync(file) ? new SourceMap(JSON.parse(readFileSync(file, 'utf8')) as never) : undefined;
      maps.set(frame.url, map);
    }
    const entry = map?.findEntry(frame.lineNumber, frame.columnNumber);
    if (!entry || !('originalSource' in entry)) return asIs;
    // Sources are relative to dist/: ../src/engine/s3/lean.ts, ../node_modules/@smithy/...
    const source = entry.originalSource.replace(/^(\.\.\/)+/, '');
    const url = source.startsWith('src/') ? `file:///dist/${source.slice(4).replace(/\.ts$/, '.js')}` : source;
    return { url, line: entry.originalLine + 1 };
  };
}

function summarise(file: string): void {
  const original = originalFrames();
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, { area: string; us: number }>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const frame = original(n.callFrame);
    const area = areaOf(frame.url, n.callFrame.functionName);
    if (area === 'idle') continue;
    busy += us;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const short = frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/');
    const key = `${n.callFrame.functionName || '(anonymous)'} ${short}:${frame.line}`;
    const f = fns.get(key) ?? { area, us: 0 };
    f.us += us;
    fns.set(key, f);
  }
  const pct = (us: number): string => `${((us / busy) * 100).toFixed(1)}%`;
  process.stdout.write(`\nbusy ${(busy / 1e6).toFixed(2)} s in the profile\n\n| area | self % |\n|---|---:|\n`);
  for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1])) process.stdout.write(`| ${a} | ${pct(us)} |\n`);
  process.stdout.write('\n| top self-time function | area | self % |\n|---|---|---:|\n');
  for (const [k, f] of [...fns].sort((x, y) => y[1].us - x[1].us).slice(0, 25))
    process.stdout.write(`| ${k} | ${f.area} | ${pct(f.us)} |\n`);
}

async function main(): Promise<void> {
  // Only the table, from a profile taken elsewhere (e.g. NODE_OPTIONS=--cpu-prof under the bench).
  const existing = argv.indexOf('--summarise');
  if (existing >= 0) return summarise(argv[existing + 1] ?? '');
  const workDir = mkdtempSync(join(tmpdir(), 's3eo-profile-'));
  const env = server === 'moto' ? await startMoto({ workDir }) : await startSeaweed({ workDir });
  try {
    const key = env.keys.find((k) => k.alias === 'alias/test-key-a');
    if (!key) throw new Error('alias/test-key-a missing');
    const s3 = new S3Client({
      endpoint: env.s3Endpoint,
      region: env.region,
      forcePathStyle: true,
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
      // As the bench writes its data: no checksum stored with the objects.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const set = smallSet(objects);
    process.stderr.write(`[profile] writing ${objects} objects\n`);
    await createCopy(s3, 'profile', set);
    if (ownerEnforced)
      await s3.send(
        new PutBucketOwnershipControlsCommand({
          Bucket: 'profile',
          OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        }),
      );
    const childEnv = {
      // As the bench runs its contenders: no user AWS settings.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_'))),
      AWS_CONFIG_FILE: '/dev/null',
      AWS_ACCESS_KEY_ID: env.accessKeyId,
      AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
      AWS_REGION: env.region,
    };
    if (withCeiling) {
      // The yardstick on its own copy of the same data, in the same minute: the CPU ratio holds on a loaded machine.
      await createCopy(s3, 'profile-ceiling', set);
      const c = await runMeasured(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'bench', 'ceiling.ts'), 'profile-ceiling', set.prefix, '128', key.arn],
        { ...childEnv, S3EO_BENCH_ENDPOINT: env.s3Endpoint },
      );
      ceilingCpu = (c.cpuSeconds / objects) * 1000;
      process.stdout.write(
        `ceiling: ${(objects / c.wallSeconds).toFixed(0)} obj/s, ${ceilingCpu.toFixed(2)} CPU s per 1,000 objects, exit ${c.code}\n`,
      );
    }
    s3.destroy();
    process.stderr.write('[profile] running the CLI\n');
    const profDir = join(workDir, 'prof');
    const run = await runMeasured(
      process.execPath,
      [
        ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
        join(ROOT, 'dist', 'cli.js'),
        `s3://profile/${set.prefix}`,
        '--sse',
        'aws:kms',
        '--sse-kms-key-id',
        key.alias,
        '--endpoint-url',
        env.s3Endpoint,
        '--kms-endpoint-url',
        env.kmsEndpoint,
        '--force-path-style',
        '--json',
        ...argv
          .filter((a, i) => a.startsWith('--cli-') || argv[i - 1]?.startsWith('--cli-'))
          .map((a) => a.replace(/^--cli-/, '--')),
      ],
      childEnv,
    );
    if (run.code !== 0) throw new Error(`the CLI exited ${run.code}: ${run.stderr.slice(-2000)}`);
    const result = JSON.parse(run.stdout) as { requests?: Record<string, unknown>; counters?: unknown };
    const cpu = (run.cpuSeconds / objects) * 1000;
    process.stdout.write(
      `${server}: ${objects} objects in ${run.wallSeconds.toFixed(1)} s (${(objects / run.wallSeconds).toFixed(0)} obj/s), ` +
        `${cpu.toFixed(2)} CPU s per 1,000 objects${profile ? ' (profiler on)' : ''}, peak RSS ${run.peakRssMiB.toFixed(0)} MiB` +
        `${ceilingCpu ? `, ${(cpu / ceilingCpu).toFixed(2)}x the ceiling's CPU` : ''}\n` +
        `requests: ${JSON.stringify(result.requests)}\ncounters: ${JSON.stringify(result.counters)}\n`,
    );
    if (profile) {
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) summarise(join(profDir, file));
    }
  } finally {
    await env.stop().catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
