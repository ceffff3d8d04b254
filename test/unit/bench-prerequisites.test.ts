// `npm run bench` after the README's two commands builds what it needs itself (package.json
// "prebench": the bundle, the test servers, s5cmd), and a bench started without one of them stops
// before measuring anything, with a message that names the script that builds it: s5cmd comes from
// test/env/build-bench.sh, not build-all.sh (one run died at its report, pointed at the wrong one).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { missingPrerequisites, toolVersion } from '../../bench/lib/prerequisites.js';
import { toolPath } from '../harness/process.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
let saved: string | undefined;

beforeEach(() => {
  saved = process.env.S3EO_CACHE_DIR;
  // An empty cache: nothing built yet, as on a new user's machine.
  process.env.S3EO_CACHE_DIR = mkdtempSync(join(tmpdir(), 's3eo-empty-cache-'));
});
afterEach(() => {
  if (saved === undefined) delete process.env.S3EO_CACHE_DIR;
  else process.env.S3EO_CACHE_DIR = saved;
});

describe('bench prerequisites', () => {
  it('npm run bench builds the bundle, the servers and s5cmd before bench/run.ts (prebench)', () => {
    const scripts = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    const pre = scripts.prebench ?? '';
    expect(pre).toContain('npm run build');
    expect(pre).toContain('test/env/build-all.sh');
    expect(pre).toContain('test/env/build-bench.sh');
    expect(scripts.bench).toContain('bench/run.ts');
    expect(scripts['prebench:shards']).toContain('test/env/build-all.sh');
  });

  it('a missing s5cmd names test/env/build-bench.sh; a missing server names build-all.sh', () => {
    expect(() => toolPath('s5cmd')).toThrow(/run "bash test\/env\/build-bench\.sh" \(npm run bench runs it first\)/);
    expect(() => toolPath('weed')).toThrow(/run "bash test\/env\/build-all\.sh"/);
  });

  it('the bench lists every missing piece its contenders need, each with its fix, before it starts', () => {
    const missing = missingPrerequisites(mkdtempSync(join(tmpdir(), 's3eo-no-dist-')), ['ours-operator', 's5cmd']);
    expect(missing.find((m) => m.includes('"s5cmd"'))).toContain('build-bench.sh');
    expect(missing.find((m) => m.includes('"kube-apiserver"'))).toContain('build-all.sh');
    expect(missing.find((m) => m.includes('main.js'))).toContain('npm run build');
    // The CLI alone needs no s5cmd and no apiserver.
    const cliOnly = missingPrerequisites(ROOT, ['ours-cli']).join('\n');
    expect(cliOnly).not.toContain('s5cmd');
    expect(cliOnly).not.toContain('kube-apiserver');
  });

  it("the report's tool versions never throw for a tool that was not built", () => {
    expect(toolVersion('s5cmd', () => 'v2')).toMatch(/^not found .*build-bench\.sh/);
  });
});
