// The print step of s3-encrypt: the JSON summary on stdout, what went wrong on
// stderr, and the exit code a script acts on.
import { addCounters, emptyCounters, type Counters, type Plan, type RunResult } from '../engine/index.js';
import type { Executed } from './execute.js';
import type { RetryTally } from './retry.js';

/** Exit code of a run stopped by a signal: not done, resume it. */
export const EXIT_STOPPED = 3;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** The summary printed at the end: the counters include those the resume file had (base). */
export function summaryOf(plan: Plan, base: Counters, run: Executed, retry?: RetryTally): Record<string, unknown> {
  const { result, seconds } = run;
  return {
    status: result.status,
    ...(result.reason ? { reason: result.reason, message: result.message } : {}),
    bucket: plan.bucket,
    prefix: plan.prefix,
    sse: plan.target.type,
    ...(result.resolvedKmsKeyArn ? { kmsKeyArn: result.resolvedKmsKeyArn } : {}),
    dryRun: plan.dryRun,
    counters: addCounters(base, result.counters),
    skippedByReason: result.skippedByReason,
    ...(plan.dryRun ? { wouldEncrypt: result.planned, estimate: result.estimate } : {}),
    ...(result.checkpoint !== undefined ? { checkpoint: result.checkpoint } : {}),
    ...(result.noncurrentVersions !== undefined ? { noncurrentVersions: result.noncurrentVersions } : {}),
    ...(result.abortedUploads ? { abortedUploads: result.abortedUploads } : {}),
    ...(result.warnings?.length ? { warnings: result.warnings } : {}),
    seconds: Number(seconds.toFixed(3)),
    objectsPerSecond: Number((result.counters.scanned / Math.max(seconds, 0.001)).toFixed(1)),
    requests: result.requests,
    failures: result.recentFailures,
    ...(run.reportLocation ? { report: run.reportLocation } : {}),
    ...(retry ? { retry: retry.summary() } : {}),
  };
}

/** A run with nothing to do (--max-objects reached over the resume file's life): Complete, no request sent. */
export function nothingDone(): Executed {
  const skippedByReason = { archived: 0, filtered: 0, vanished: 0, unsupported: 0 };
  const planned = { objects: 0, bytes: 0, byMethod: {} };
  const result: RunResult = {
    status: 'Complete',
    counters: emptyCounters(),
    skippedByReason,
    planned,
    committed: { counters: emptyCounters(), skippedByReason, planned },
    openUploads: [],
    requests: {},
    recentFailures: [],
    inFlight: 0,
  };
  return { result, seconds: 0 };
}

/** Prints the summary (and, unless --json, what went wrong) and returns the exit code. */
export function printResult(
  plan: Plan,
  base: Counters,
  run: Executed,
  opts: { json: boolean; retry?: RetryTally | undefined },
): number {
  const { result } = run;
  const { json, retry } = opts;
  const counters = addCounters(base, result.counters);
  process.stdout.write(`${JSON.stringify(summaryOf(plan, base, run, retry), null, json ? 0 : 2)}\n`);
  if (retry && !json) process.stderr.write(`s3-encrypt: ${retry.line()}\n`);
  if (result.status === 'Failed') {
    if (!json) process.stderr.write(`s3-encrypt: ${result.message ?? result.reason ?? 'failed'}\n`);
    return counters.scanned === 0 ? 2 : 1;
  }
  for (const w of result.warnings ?? []) if (!json) process.stderr.write(`s3-encrypt: warning: ${w}\n`);
  // Stopped is not done: a script must not take the prefix for finished.
  if (result.status === 'Stopped') return EXIT_STOPPED;
  return counters.failed > 0 ? 1 : 0;
}
