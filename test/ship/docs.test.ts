// The troubleshooting section of docs/install.md names every reason the operator
// can write on a job (the reasons are read from src/, so a new one needs its entry).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './tools.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Failure reasons and per-object failure codes written by src/. */
function reasons(): Set<string> {
  const found = new Set<string>();
  for (const file of sources(join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    // new JobError('X', ...), new TransientError('X', ...), and ternaries in the first argument.
    for (const m of text.matchAll(/new (?:JobError|TransientError)\(\s*([^,]+),/g)) {
      for (const lit of (m[1] ?? '').matchAll(/'([A-Z][A-Za-z]+)'/g)) found.add(lit[1] ?? '');
    }
    for (const m of text.matchAll(/failJob\(\s*\w+,\s*'([A-Z][A-Za-z]+)'/g)) found.add(m[1] ?? '');
    for (const m of text.matchAll(/this\.failure\([^;]*?,\s*'([A-Z][A-Za-z]+)',/g)) found.add(m[1] ?? '');
    // Tenancy refusals (src/controller/tenancy.ts), written through failJob(job, refused.reason, ...).
    for (const m of text.matchAll(/reason: '([A-Z][A-Za-z]+NotAllowed)'/g)) found.add(m[1] ?? '');
    // Lookup tables of reasons, e.g. KMS error code -> reason.
    for (const m of text.matchAll(/^\s+\w+:\s*'(KMS[A-Z][A-Za-z]+)',$/gm)) found.add(m[1] ?? '');
  }
  found.delete('');
  return found;
}

describe('docs/install.md', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'install.md'), 'utf8');
  const troubleshooting = doc.slice(doc.indexOf('## Troubleshooting'));

  it('has the real-cluster steps: helm install, IRSA, a dry run first, then the real run', () => {
    expect(doc).toContain('helm install s3-encryption-operator helm/s3-encryption-operator');
    expect(doc).toContain('serviceAccount.annotations.eks');
    expect(doc).toMatch(/## 4\. First a dry run/);
    expect(doc).toMatch(/## 5\. The real run/);
  });

  it('explains every failure reason the operator writes', () => {
    const all = reasons();
    for (const r of [
      'BucketNotFound',
      'AccessDenied',
      'KMSKeyDisabled',
      'KMSKeyNotFound',
      'CredentialsUnavailable',
      'NotAtTargetAfterWrite',
    ]) {
      expect(all, `src/ no longer writes ${r}?`).toContain(r);
    }
    for (const r of all) expect(troubleshooting, `reason ${r}`).toContain(`**\`${r}\`**`);
  });

  it('has every job metric of src/metrics.ts in its metrics table', () => {
    const table = doc.slice(doc.indexOf('### Metrics'));
    const source = readFileSync(join(ROOT, 'src', 'metrics.ts'), 'utf8');
    const names = [...source.matchAll(/name: '(s3encryption_[a-z_]+)'/g)].map((m) => m[1] ?? '');
    expect(names).toContain('s3encryption_shard_progress_ratio');
    for (const name of names) expect(table, name).toContain(`| \`${name}\` |`);
  });
});
