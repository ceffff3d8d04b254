// The bench's report arithmetic (bench/lib/summary.ts): contenders take turns in alternating
// order, and each ratio is computed within one run, then reported as the median over the runs
// with its spread, so that one slow run (or always running second) does not make the number.
import { describe, expect, it } from 'vitest';
import { ratioMedians, ratioStats, ratioText, runOrder, type RunRow } from '../../bench/lib/summary.js';

function row(contender: string, run: number, objectsPerSecond: number, cpu: number, rss: number, ok = true): RunRow {
  return {
    set: 'small-100',
    contender,
    run,
    objects: 100,
    wallSeconds: 100 / objectsPerSecond,
    objectsPerSecond,
    cpuSecondsPer1000: cpu,
    peakRssMiB: rss,
    exitCode: 0,
    verdict: { checked: 100, notEncrypted: 0, changed: 0, missing: 0, outsideTouched: 0, examples: [], losses: {} },
    ok,
  };
}

describe('bench runs and ratios', () => {
  it('contenders alternate: as given in odd runs, reversed in even ones', () => {
    const names = ['a', 'b', 'c'];
    expect([1, 2, 3, 4].map((run) => runOrder(names, run).join(''))).toEqual(['abc', 'cba', 'abc', 'cba']);
    expect(names).toEqual(['a', 'b', 'c']);
  });

  it('operatorVsCli, its CPU ratio and the RSS delta are medians of the per-run values, with their spread', () => {
    const rows = [
      row('ours-cli', 1, 300, 1.5, 230),
      row('ours-operator', 1, 240, 1.8, 300),
      row('ours-cli', 2, 200, 1.6, 240),
      row('ours-operator', 2, 190, 1.7, 290),
      row('ours-cli', 3, 320, 1.4, 235),
      row('ours-operator', 3, 310, 1.5, 285),
    ];
    const stats = ratioStats(rows)['small-100']!;
    // Per run: 0.8, 0.95, 0.969; the median is the middle one, not the ratio of the medians (300 / 240 = 0.8).
    expect(stats.operatorVsCli!.runs).toEqual([0.8, 0.95, 0.969]);
    expect(stats.operatorVsCli!.median).toBe(0.95);
    expect([stats.operatorVsCli!.min, stats.operatorVsCli!.max]).toEqual([0.8, 0.969]);
    expect(stats.operatorCpuVsCli!.median).toBe(1.071);
    expect(stats.operatorRssDeltaMiB!.runs).toEqual([70, 50, 50]);
    expect(stats.operatorRssDeltaMiB!.median).toBe(50);
    expect(ratioMedians({ 'small-100': stats })['small-100']!.operatorVsCli).toBe(0.95);
    expect(ratioText(stats.operatorVsCli!)).toBe('0.95 (0.8–0.969 over 3 runs)');
  });

  it('a run where the operator left objects wrong gives no ratio for that run; one run prints plainly', () => {
    const rows = [
      row('ours-cli', 1, 300, 1.5, 230),
      row('ours-operator', 1, 240, 1.8, 300, false),
      row('ours-cli', 2, 200, 1.6, 240),
      row('ours-operator', 2, 190, 1.7, 290),
    ];
    const s = ratioStats(rows)['small-100']!.operatorVsCli!;
    expect(s.runs).toEqual([null, 0.95]);
    expect(s.median).toBe(0.95);
    expect(ratioText(s)).toBe('0.95');
    expect(ratioText({ median: null, min: null, max: null, runs: [null] })).toBe('-');
  });
});
