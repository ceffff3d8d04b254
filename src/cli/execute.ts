// The run step of s3-encrypt: the engine over the plan, with the resume file
// kept up to date, the progress shown, the report written, and SIGINT/SIGTERM
// turned into a clean stop.
import { addCounters, createClients, runEngine, type Outcome, type Plan, type RunResult } from '../engine/index.js';
import { ReportWriter } from '../engine/bookkeeping/report.js';
import type { Flags } from './args.js';
import { ProgressDisplay } from './progress.js';
import type { ResumeFile } from './resume-file.js';

export interface Executed {
  result: RunResult;
  /** Where the report went, if one was asked for and written. */
  reportLocation?: string;
  seconds: number;
}

/** observe: sees every object's outcome (the retry's tally). */
export async function execute(
  plan: Plan,
  flags: Flags,
  resume: ResumeFile,
  observe?: (key: string, outcome: Outcome) => void,
): Promise<Executed> {
  const base = resume.state.counters;
  const clients = createClients(plan.connection, {
    ...(plan.maxRequestsPerSecond ? { maxRequestsPerSecond: plan.maxRequestsPerSecond } : {}),
    ...(plan.concurrency ? { concurrency: plan.concurrency } : {}),
  });
  // The bucket in every row: --retry-failed can then refuse a report of another bucket.
  const report = flags.report
    ? new ReportWriter({ destination: flags.report, all: flags.reportAll, bucket: plan.bucket })
    : undefined;
  const display = new ProgressDisplay(base, {
    bar: process.stderr.isTTY && flags.progress !== false && !flags.json,
    quiet: flags.json,
  });
  const started = performance.now();
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());

  display.start();
  let result: RunResult;
  try {
    result = await runEngine(plan, {
      clients,
      signal: stop.signal,
      onProgress: (p) => {
        // Saved: the objects under the checkpoint (a resumed run looks at the others again).
        resume.state = {
          ...(p.checkpoint !== undefined
            ? { startAfter: p.checkpoint }
            : resume.state.startAfter !== undefined
              ? { startAfter: resume.state.startAfter }
              : {}),
          counters: addCounters(base, p.committed.counters),
          openUploads: p.openUploads,
        };
        if (p.checkpoint !== undefined || p.openUploads.length > 0) resume.save();
        display.update(p);
      },
      // Written before the upload's first part is copied: a kill -9 leaves nothing unrecorded.
      recordUploads: (open) => {
        resume.state = { ...resume.state, openUploads: open };
        resume.save();
      },
      ...(report || observe
        ? {
            onOutcome: (key: string, outcome: Outcome) => {
              report?.add(key, outcome);
              observe?.(key, outcome);
            },
          }
        : {}),
    });
  } finally {
    display.stop();
  }
  let reportLocation: string | undefined;
  if (report) {
    try {
      reportLocation = await report.close(clients.s3);
    } catch (err) {
      process.stderr.write(`s3-encrypt: writing the report failed: ${(err as Error).message}\n`);
    }
  }
  clients.destroy();
  const seconds = (performance.now() - started) / 1000;
  return { result, ...(reportLocation ? { reportLocation } : {}), seconds };
}
