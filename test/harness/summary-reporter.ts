// Prints one plain closing line, "tests: N passed, N failed, N skipped", which
// CI reads to tell a run that tested something from one that ran no test.
//
// It counts what vitest counts as a failure: every failed test, plus every test
// file that failed without a failed test of its own (it did not load, a suite
// body threw before declaring its tests, a beforeAll hook failed so that its
// tests were skipped), plus every unhandled error (vitest fails the run on one).
// test/unit/summary-reporter.test.ts compares this line with vitest's own counts.
import type { SerializedError } from 'vitest';
import type { Reporter, TestModule } from 'vitest/node';

interface Summary {
  passed: number;
  failed: number;
  skipped: number;
}

function summarize(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): Summary {
  const summary: Summary = { passed: 0, failed: 0, skipped: 0 };
  for (const mod of modules) {
    let failedHere = 0;
    for (const test of mod.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') summary.passed++;
      else if (state === 'failed') failedHere++;
      else summary.skipped++;
    }
    summary.failed += failedHere;
    if (mod.state() === 'failed' && failedHere === 0) summary.failed++;
  }
  summary.failed += unhandledErrors.length;
  return summary;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const { passed, failed, skipped } = summarize(modules, unhandledErrors);
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
