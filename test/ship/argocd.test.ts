// The Argo CD health check (deploy/argocd/health.lua), run by the real Lua 5.1
// interpreter against the cases of deploy/argocd/health_test.yaml (Argo CD's own
// test format), in a sandbox with only the libraries Argo CD's Lua VM offers.
// docs/argocd.md must carry the same script in its argocd-cm snippet.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ROOT, run, systemTool } from './tools.js';

const DIR = join(ROOT, 'deploy', 'argocd');
const SCRIPT = join(DIR, 'health.lua');

interface HealthTest {
  healthStatus: { status: string; message: string };
  inputPath: string;
}

/** A Lua table constructor for a JSON-like value (nulls become absent fields, as in Argo CD's conversion). */
function toLua(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') {
    // Every byte as a decimal escape outside plain printable ASCII: no quoting surprises.
    const body = [...Buffer.from(value, 'utf8')]
      .map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b}`))
      .join('');
    return `"${body}"`;
  }
  if (value instanceof Date) return toLua(value.toISOString().replace(/\.000Z$/, 'Z'));
  if (Array.isArray(value)) return `{${value.map(toLua).join(', ')}}`;
  if (typeof value === 'object') {
    const fields = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `[${toLua(k)}] = ${toLua(v)}`);
    return `{${fields.join(', ')}}`;
  }
  throw new Error(`cannot convert ${typeof value} to Lua`);
}

// Runs the check once per object, each in a fresh environment holding `obj` and
// the libraries Argo CD opens (base functions, string, table, math) -- no io, os, require.
function harness(objects: unknown[]): string {
  return `
local check = assert(loadfile(${toLua(SCRIPT)}))
local cases = {${objects.map(toLua).join(',\n')}}
for i, o in ipairs(cases) do
  local env = {
    obj = o, ipairs = ipairs, pairs = pairs, next = next, type = type, tostring = tostring,
    tonumber = tonumber, select = select, unpack = unpack, error = error, pcall = pcall,
    string = string, table = table, math = math,
  }
  setfenv(check, env)
  local ok, hs = pcall(check)
  if not ok then
    io.write(i, "\\tERROR\\t", tostring(hs), "\\n")
  else
    io.write(i, "\\t", tostring(hs.status), "\\t", tostring(hs.message), "\\n")
  end
end
`;
}

describe('Argo CD health check (Lua 5.1)', () => {
  const lua = systemTool('lua5.1', 'lua5.1');
  const tests = (parse(readFileSync(join(DIR, 'health_test.yaml'), 'utf8')) as { tests: HealthTest[] }).tests;

  it('covers Healthy, Degraded, Suspended, Progressing with N/M objects, and a lagging observedGeneration', () => {
    const statuses = new Set(tests.map((t) => t.healthStatus.status));
    expect([...statuses].sort()).toEqual(['Degraded', 'Healthy', 'Progressing', 'Suspended']);
    expect(tests.some((t) => /^\d+\/\d+ objects/.test(t.healthStatus.message))).toBe(true);
    expect(tests.some((t) => t.healthStatus.message.includes('observe generation'))).toBe(true);
  });

  it('gives every test case of health_test.yaml its expected status and message', async () => {
    const objects = tests.map((t) => parse(readFileSync(join(DIR, t.inputPath), 'utf8')) as unknown);
    const dir = mkdtempSync(join(tmpdir(), 's3eo-lua-'));
    const file = join(dir, 'harness.lua');
    writeFileSync(file, harness(objects));
    const result = await run(lua, [file], { cwd: dirname(file) });
    const got = result.stdout.trim().split('\n').map((line) => {
      const [, status, ...message] = line.split('\t');
      return { status, message: message.join('\t') };
    });
    expect(got).toEqual(tests.map((t) => ({ status: t.healthStatus.status, message: t.healthStatus.message })));
  });

  it('the string escaping survives quotes, backslashes and non-ASCII', async () => {
    const tricky = 'a "quoted" \\ back\tslash — ünïcode';
    const dir = mkdtempSync(join(tmpdir(), 's3eo-lua-'));
    const file = join(dir, 'echo.lua');
    writeFileSync(file, `io.write((${toLua({ s: tricky })}).s)`);
    expect((await run(lua, [file])).stdout).toBe(tricky);
  });

  it('docs/argocd.md carries the same script in its argocd-cm snippet', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'argocd.md'), 'utf8');
    const script = readFileSync(SCRIPT, 'utf8').trimEnd();
    const indented = script.split('\n').map((l) => (l ? `    ${l}` : '')).join('\n');
    expect(doc).toContain('resource.customizations.health.s3encryption.dev_EncryptionJob: |\n' + indented);
  });
});
