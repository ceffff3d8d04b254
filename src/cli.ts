#!/usr/bin/env node
// s3-encrypt: the engine without Kubernetes. Flags follow the AWS CLI's words.
// Exit codes: 0 all done, 1 some objects failed, 2 the run could not start,
// 3 stopped by SIGINT/SIGTERM before the end (resume with --resume).
//
// One run is four steps, each in its own module under cli/: parse the command
// line (args.ts), plan the run from it, the resume file and a retried report
// (plan.ts, resume-file.ts, retry.ts), run the engine (execute.ts), print the
// summary (print.ts).
import { parseArgs, UsageError } from './cli/args.js';
import { execute } from './cli/execute.js';
import { prepareRun, type PreparedRun } from './cli/plan.js';
import { nothingDone, printResult } from './cli/print.js';
import { RetryTally } from './cli/retry.js';

export { EXIT_STOPPED } from './cli/print.js';
export { parseS3Url } from './cli/args.js';

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'number') return args;
  const { flags } = args;

  let prepared: PreparedRun;
  try {
    prepared = await prepareRun(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`s3-encrypt: ${err.message}\n`);
    return 2;
  }
  const { plan, base, resume } = prepared;
  for (const note of prepared.notes) if (!flags.json) process.stderr.write(`s3-encrypt: ${note}\n`);
  if (prepared.nothingToDo) {
    if (!flags.json) process.stderr.write(`s3-encrypt: ${prepared.nothingToDo}\n`);
    return printResult(plan, base, nothingDone(), { json: flags.json });
  }
  const retry = prepared.retry ? new RetryTally(prepared.retry) : undefined;
  const run = await execute(plan, flags, resume, retry ? (_key, outcome) => retry.add(outcome) : undefined);
  return printResult(plan, base, run, { json: flags.json, retry });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`s3-encrypt: ${String(err)}\n`);
    process.exit(2);
  },
);
