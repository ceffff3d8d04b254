// The Argo CD health check (deploy/argocd/health.lua) run the way Argo CD runs
// it: in gopher-lua, the Lua VM Argo CD embeds, with the libraries Argo CD opens
// for a check from argocd-cm (test/env/go/lua), against the cases of
// deploy/argocd/health_test.yaml (Argo CD's own test format).
// docs/argocd.md must carry the same script in its argocd-cm snippet.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { toolPath } from '../harness/process.js';
import { ROOT, run } from './tools.js';

const DIR = join(ROOT, 'deploy', 'argocd');
const SCRIPT = join(DIR, 'health.lua');

interface HealthTest {
  healthStatus: { status: string; message: string };
  inputPath: string;
}

interface HealthResult {
  status?: string;
  message?: string;
  error?: string;
}

/** Runs a health script once per object (each in a fresh VM, as Argo CD does). */
async function health(script: string, objects: unknown[]): Promise<HealthResult[]> {
  const result = await run(toolPath('lua'), ['health', script], { input: JSON.stringify(objects) });
  return JSON.parse(result.stdout) as HealthResult[];
}

function scriptFile(source: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 's3eo-lua-')), 'check.lua');
  writeFileSync(file, source);
  return file;
}

describe('Argo CD health check (gopher-lua, as Argo CD runs it)', () => {
  const tests = (parse(readFileSync(join(DIR, 'health_test.yaml'), 'utf8')) as { tests: HealthTest[] }).tests;

  it('covers Healthy, Degraded, Suspended, Progressing with N/M objects, and a lagging observedGeneration', () => {
    const statuses = new Set(tests.map((t) => t.healthStatus.status));
    expect([...statuses].sort()).toEqual(['Degraded', 'Healthy', 'Progressing', 'Suspended']);
    expect(tests.some((t) => /^\d+\/\d+ objects/.test(t.healthStatus.message))).toBe(true);
    expect(tests.some((t) => t.healthStatus.message.includes('observe generation'))).toBe(true);
  });

  it('gives every test case of health_test.yaml its expected status and message', async () => {
    const objects = tests.map((t) => parse(readFileSync(join(DIR, t.inputPath), 'utf8')) as unknown);
    const got = await health(SCRIPT, objects);
    expect(got).toEqual(tests.map((t) => ({ status: t.healthStatus.status, message: t.healthStatus.message })));
  });

  it('passes a failure message with quotes, backslashes and non-ASCII through unchanged', async () => {
    const message = 'a "quoted" \\ back\tslash — ünïcode';
    const job = {
      metadata: { generation: 2 },
      status: {
        observedGeneration: 2,
        conditions: [{ type: 'Failed', status: 'True', reason: 'BucketNotFound', message }],
      },
    };
    expect(await health(SCRIPT, [job])).toEqual([{ status: 'Degraded', message: `BucketNotFound: ${message}` }]);
  });

  it("runs in Argo CD's sandbox: no string, math or io library, so a check that needs them fails here as there", async () => {
    const probe = scriptFile(
      'return { status = "Healthy", message = type(string) .. "," .. type(math) .. "," .. type(io) .. "," .. type(require("os").time) .. "," .. type(table.concat) }',
    );
    expect(await health(probe, [{}])).toEqual([{ status: 'Healthy', message: 'nil,nil,nil,function,function' }]);
    const [formatted] = await health(scriptFile('return { status = "Healthy", message = string.format("%d", 1) }'), [
      {},
    ]);
    expect(formatted?.error).toMatch(/attempt to index a non-table object\(nil\) with key 'format'/);
    // A status Argo CD does not know becomes Unknown, as in Argo CD.
    expect(await health(scriptFile('return { status = "Fine" }'), [{}])).toEqual([
      { status: 'Unknown', message: 'Lua returned an invalid health status' },
    ]);
  });

  it('docs/argocd.md carries the same script in its argocd-cm snippet', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'argocd.md'), 'utf8');
    const script = readFileSync(SCRIPT, 'utf8').trimEnd();
    const indented = script
      .split('\n')
      .map((l) => (l ? `    ${l}` : ''))
      .join('\n');
    expect(doc).toContain('resource.customizations.health.s3encryption.dev_EncryptionJob: |\n' + indented);
  });
});
