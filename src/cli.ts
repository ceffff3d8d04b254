#!/usr/bin/env node
// s3-encrypt: the engine without Kubernetes. Flags follow the AWS CLI's words.
// Exit codes: 0 all done, 1 some objects failed, 2 the run could not start,
// 3 stopped by SIGINT/SIGTERM before the end (resume with --resume).
//
// One run is four steps, each in its own module under cli/: parse the command
// line (args.ts), plan the run from it and the resume file (plan.ts,
// resume-file.ts), run the engine (execute.ts), print the summary (print.ts).
import { parseArgs } from './cli/args.js';
import { execute } from './cli/execute.js';
import { planOf } from './cli/plan.js';
import { printResult } from './cli/print.js';
import { readCheckpoint, ResumeFile, type CheckpointFile } from './cli/resume-file.js';

export { EXIT_STOPPED } from './cli/print.js';
export { parseS3Url } from './cli/args.js';

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'number') return args;
  const { flags } = args;

  let resumeFrom: CheckpointFile | undefined;
  try {
    resumeFrom = flags.resume ? readCheckpoint(flags.resume, args.bucket, args.prefix) : undefined;
  } catch (err) {
    process.stderr.write(`s3-encrypt: ${(err as Error).message}\n`);
    return 2;
  }
  const plan = planOf(args, resumeFrom);
  const resume = new ResumeFile(
    flags.dryrun ? undefined : flags.resume,
    { bucket: args.bucket, prefix: args.prefix },
    resumeFrom,
  );
  const base = resume.state.counters;
  const run = await execute(plan, flags, resume);
  return printResult(plan, base, run, flags.json);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`s3-encrypt: ${String(err)}\n`);
    process.exit(2);
  },
);
