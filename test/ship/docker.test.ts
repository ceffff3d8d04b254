// The Dockerfile, without a Docker engine: lint it for the properties the chart
// relies on (multi-stage, dev dependencies only in the build stage, numeric
// non-root USER equal to the chart's runAsUser, exec-form ENTRYPOINT), and do what
// its two stages do -- bundle src/ into a fresh dist/, copy it with package.json alone
// into an empty directory (no node_modules), run `node dist/main.js --help` -- on the
// Node of the image's base (Node 24, the one the tests run on).
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CHART, ROOT, run } from './tools.js';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`cannot read Dockerfile line: ${line}`);
    const op = (m[1] ?? '').toUpperCase();
    const args = m[2] ?? '';
    if (op === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: from?.[1] ?? args, ...(from?.[2] ? { name: from[2] } : {}), instructions: [] });
    } else if (op === 'ARG' && stages.length === 0) {
      continue; // global build arguments
    } else {
      const stage = stages[stages.length - 1];
      if (!stage) throw new Error(`${op} before FROM`);
      stage.instructions.push({ op, args });
    }
  }
  return stages;
}

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stages = parseDockerfile(dockerfile);
  const build = stages[0];
  const runtime = stages[stages.length - 1];
  const runs = (s: Stage | undefined): string[] =>
    (s?.instructions ?? []).filter((i) => i.op === 'RUN').map((i) => i.args);

  it('is multi-stage: the build stage installs dev dependencies and bundles, the runtime stage installs nothing', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build?.name).toBeTruthy();
    expect(runs(build).some((r) => /\bnpm ci\b/.test(r) && !r.includes('--omit=dev'))).toBe(true);
    expect(runs(build).some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    // The bundle carries every runtime dependency (scripts/bundle.mjs).
    expect(runs(runtime)).toEqual([]);
    for (const i of runtime?.instructions ?? []) expect(i.args).not.toMatch(/node_modules/);
    const copyDist = runtime?.instructions.find(
      (i) => i.op === 'COPY' && i.args.startsWith(`--from=${build?.name ?? '?'} `),
    );
    expect(copyDist?.args).toMatch(/\/dist\s+\.\/dist$/);
    expect(dockerfile).not.toMatch(/\bnpm install\b/);
    for (const s of stages) expect(s.from, 'base image pinned to a version, not latest').not.toMatch(/:latest$/);
  });

  it('builds on a pinned Node 24 base image, the same Node the tests run on (test/env/build-node.sh)', () => {
    const arg = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1] ?? '';
    const image = /^node:(\d+\.\d+\.\d+)-[a-z]+-slim$/.exec(arg);
    expect(image, `ARG NODE_IMAGE=${arg}: node:<exact version>-<debian>-slim`).not.toBeNull();
    for (const s of stages) expect(s.from).toBe('${NODE_IMAGE}');
    const fetched = /^NODE_VERSION=(\S+)$/m.exec(readFileSync(join(ROOT, 'test', 'env', 'build-node.sh'), 'utf8'))?.[1];
    expect(image?.[1]).toBe(fetched);
    expect(image?.[1]?.split('.')[0]).toBe('24');
    // What the last test does below runs on this very Node.
    expect(process.versions.node).toBe(image?.[1]);
  });

  it('runs as the numeric non-root user the chart sets (runAsUser), with nothing run after USER', () => {
    const instructions = runtime?.instructions ?? [];
    const userIndex = instructions.findIndex((i) => i.op === 'USER');
    expect(userIndex).toBeGreaterThanOrEqual(0);
    const user = instructions[userIndex]?.args ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    const [uid, gid] = user.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as {
      podSecurityContext: { runAsUser: number; runAsGroup: number };
    };
    expect(uid).toBe(values.podSecurityContext.runAsUser);
    if (gid !== undefined) expect(gid).toBe(values.podSecurityContext.runAsGroup);
    expect(
      instructions.slice(userIndex + 1).filter((i) => i.op === 'RUN' || i.op === 'COPY' || i.op === 'ADD'),
    ).toEqual([]);
  });

  it('starts the operator with an exec-form ENTRYPOINT ["node", "dist/main.js"]', () => {
    const entrypoints = (runtime?.instructions ?? []).filter((i) => i.op === 'ENTRYPOINT');
    expect(entrypoints).toHaveLength(1);
    expect(JSON.parse(entrypoints[0]?.args ?? 'null')).toEqual(['node', 'dist/main.js']);
    expect((runtime?.instructions ?? []).some((i) => i.op === 'CMD')).toBe(false);
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['node_modules', 'dist', '.git']) expect(ignored, must).toContain(must);
    for (const s of stages) {
      for (const i of s.instructions.filter((x) => x.op === 'COPY' && !x.args.startsWith('--from='))) {
        const sources = i.args.split(/\s+/).slice(0, -1);
        for (const src of sources) {
          expect(existsSync(join(ROOT, src)), src).toBe(true);
          expect(ignored.includes(src.replace(/\/$/, '')), `${src} is in .dockerignore`).toBe(false);
        }
      }
    }
  });

  it('what the image does: bundle, copy dist/ and package.json alone, node dist/main.js --help', async () => {
    const app = mkdtempSync(join(tmpdir(), 's3eo-image-'));
    // Stage 1: the bundler of the dev dependencies, src/ -> dist/.
    await run(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), join(app, 'dist')], { timeoutMs: 240_000 });
    // Stage 2: package.json and dist/, nothing else: no node_modules to resolve anything from.
    cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    expect(readdirSync(app).sort()).toEqual(['dist', 'package.json']);
    const path = [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter);

    const before = readdirSync(app).sort();
    const env = { PATH: path, HOME: tmpdir(), NODE_ENV: 'production' };
    const help = await run(process.execPath, ['dist/main.js', '--help'], { cwd: app, env });
    for (const flag of [
      '--metrics-bind-address',
      '--health-probe-bind-address',
      '--leader-elect',
      '--watch-namespace',
    ]) {
      expect(help.stdout, flag).toContain(flag);
    }
    const cli = await run(process.execPath, ['dist/cli.js', '--help'], { cwd: app, env });
    expect(cli.stdout).toContain('--sse');
    const worker = await run(process.execPath, ['dist/worker.js', '--help'], { cwd: app, env });
    expect(worker.stdout).toContain('--job');
    // Nothing was written next to the app (the image's root filesystem is read-only).
    expect(readdirSync(app).sort()).toEqual(before);
  }, 600_000);
});
