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

/** The string literals in a piece of code: `'X'`, `a ? 'X' : 'Y'`, `r ?? 'X'`. */
function literals(code: string): string[] {
  return [...code.matchAll(/'([A-Z][A-Za-z0-9.]+)'/g)].map((m) => m[1] ?? '');
}

/**
 * Reason arguments that pass on a reason made elsewhere (and found there by reasons()): a JobError's
 * `.reason`, an engine result's, a tenancy refusal's, a planning failure's, the KMS table's (`reason` in
 * kms.ts), a shard's (parsed from its message in workerrun.ts), and S3's job-level codes (`code`: the
 * JOB_LEVEL_CODES of errors.ts). Any other expression fails the test: say where its reasons come from.
 */
const PASSED_ON = new Set([
  'err.reason',
  'planned.reason',
  'refused.reason',
  'result.reason',
  'plan.failure.reason',
  'targetProblem.reason',
  'reason',
  'code',
]);

/**
 * Every reason src/ can write on a job (its Failed, or waiting Progressing, condition) and every
 * per-object failure code it names, in all the shapes the code sets them.
 */
function reasons(): { found: Set<string>; unknown: string[] } {
  const found = new Set<string>();
  const unknown: string[] = [];
  const files = sources(join(ROOT, 'src')).map((file) => ({ file, text: readFileSync(file, 'utf8') }));
  // Reasons held in constants, e.g. SA_REFUSED in workerrun.ts.
  const constants = new Map<string, string>();
  for (const { text } of files)
    for (const m of text.matchAll(/const ([A-Z][A-Z_]+) = '([A-Z][A-Za-z0-9]+)';/g))
      constants.set(m[1] ?? '', m[2] ?? '');
  const argument = (file: string, expr: string): void => {
    // In `cond ? 'X' : 'Y'` the condition is not a reason.
    const ternary = /[^?]\?[^?.]/.exec(expr);
    const e = (ternary ? expr.slice(ternary.index + 2) : expr).trim();
    const lits = literals(e);
    for (const l of lits) found.add(l);
    const rest = e
      .replace(/'[^']*'/g, '')
      .replace(/\?\?|[?:()]/g, ' ')
      .trim()
      .split(/\s+/)
      .filter((w) => w !== '');
    for (const w of rest) {
      if (constants.has(w)) found.add(constants.get(w) ?? '');
      else if (!PASSED_ON.has(w)) unknown.push(`${file.slice(ROOT.length + 1)}: reason argument \`${e}\``);
    }
  };
  for (const { file, text } of files) {
    // new JobError(X, ...), new TransientError(X, ...): the engine's job-level reasons.
    for (const m of text.matchAll(/new (?:JobError|TransientError)\(\s*([^,]+),/g)) argument(file, m[1] ?? '');
    // The controller's failJob(job, X, ...) (reconciler) and this.failJob(X, ...) (ShardRun, WorkerRun);
    // a parameter list (`reason: string`) is the definition, not a call.
    for (const m of text.matchAll(/failJob\(\s*(?:job,\s*)?([^,]+),/g))
      if (!(m[1] ?? '').includes(':')) argument(file, m[1] ?? '');
    // The `reason` those calls pass on, where a local one has a fallback (workerrun.ts: ?? 'ShardFailed').
    for (const m of text.matchAll(/const reason = ([^;]+);/g)) for (const l of literals(m[1] ?? '')) found.add(l);
    for (const m of text.matchAll(/retryOrFail\(\s*\w+,\s*([^,]+),/g)) argument(file, m[1] ?? '');
    // A planning failure ({ reason, message, retryable }, shardplan.ts), failed or retried by the caller.
    for (const m of text.matchAll(/reason: ([^,]+), message(?:: [^,]+)?, retryable/g)) argument(file, m[1] ?? '');
    // Reasons as types: `reason: 'A' | 'B'` (SecretNotReady), `type TenancyReason = 'A' | ...`.
    for (const m of text.matchAll(/(?:reason: |type \w+Reason =\s*)((?:'[A-Z]\w+'\s*\|\s*)+'[A-Z]\w+')/g))
      for (const l of literals(m[1] ?? '')) found.add(l);
    // Per-object failure codes: failure(key, operation, 'X', ...) or this.failure(...).
    for (const m of text.matchAll(/(?:\bthis\.|(?<![\w.]))failure\(\s*[^,]+,\s*[^,]+,\s*'([A-Z][A-Za-z]+)',/g))
      found.add(m[1] ?? '');
    // Lookup tables of reasons, e.g. KMS error code -> reason.
    for (const m of text.matchAll(/^\s+\w+:\s*'(KMS[A-Z][A-Za-z]+)',$/gm)) found.add(m[1] ?? '');
    // S3's own codes that end the job as they are (new JobError(code, ...) after isJobLevel()).
    for (const m of text.matchAll(/JOB_LEVEL_CODES = new Set\(\[([^\]]+)\]\)/g))
      for (const l of literals(m[1] ?? '')) found.add(l);
  }
  found.delete('');
  return { found, unknown };
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

  it('names every CRD of crds/, and the upgrade steps its second one needs', () => {
    const kinds = readdirSync(join(ROOT, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => /\n {4}kind: (\w+)\n/.exec(readFileSync(join(ROOT, 'crds', f), 'utf8'))?.[1]);
    expect(kinds.sort()).toEqual(['EncryptionJob', 'EncryptionShard']);
    for (const kind of kinds) expect(doc, `${kind ?? ''}`).toContain(`**${kind ?? ''}**`);
    const at = doc.indexOf('### Upgrading from a version without EncryptionShard');
    expect(at, 'the upgrade section').toBeGreaterThan(0);
    const upgrade = doc.slice(at, doc.indexOf('\n### ', at + 4));
    expect(upgrade).toContain('kubectl apply -f crds/');
    expect(upgrade).toContain('kubectl apply -k deploy/workers/');
  });

  it('explains every failure reason the operator writes', () => {
    const { found: all, unknown } = reasons();
    expect(unknown, 'reasons the test cannot follow: add their source to reasons()').toEqual([]);
    for (const r of [
      'BucketNotFound',
      'AccessDenied',
      'KMSKeyDisabled',
      'KMSKeyNotFound',
      'CredentialsUnavailable',
      'NotAtTargetAfterWrite',
      // Set only as this.failJob('X', ...) / retryOrFail / a planning failure / a constant.
      'PlanningFailed',
      'WorkersFailed',
      'ShardFailed',
      'WorkerServiceAccountNotAllowed',
      'InvalidSpec',
      'SecretNotFound',
      'IdentityNotAllowed',
      'InvalidAccessKeyId',
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
