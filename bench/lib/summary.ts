// From the bench's rows (one per contender, data set and run) to what the report shows: the
// median row per contender, the issue-13 ratios of each run, and each ratio's median and
// spread over the runs. Contenders run in alternating order (runOrder), so that neither side
// of a ratio always runs first, on a machine warmed (or slowed) by the one before it.
import { median } from './measure.js';
import { verdictText, type Verdict } from './verify.js';

export interface RunRow {
  set: string;
  contender: string;
  run: number;
  objects: number;
  wallSeconds: number;
  objectsPerSecond: number;
  cpuSecondsPer1000: number;
  peakRssMiB: number;
  exitCode: number;
  verdict: Verdict;
  ok: boolean;
  note?: string;
  /** Ours (CLI and operator): requests sent, per service and operation. */
  requests?: Record<string, number>;
  /** The operator: why the bench's own watch of its job had to be opened again (it never loses the row). */
  watchRecoveries?: string[];
}

export interface Summary {
  set: string;
  contender: string;
  runs: number;
  wall: number;
  ops: number;
  cpuPer1000: number;
  rss: number;
  ok: boolean;
  verdict: string;
}

/** The contenders of run `run` (1-based): as given in odd runs, reversed in even ones (A,B,C / C,B,A / A,B,C). */
export function runOrder<T>(contenders: readonly T[], run: number): T[] {
  return run % 2 === 1 ? [...contenders] : [...contenders].reverse();
}

/** One entry per data set and contender: the median of its runs; not ok if any run was wrong. */
export function summarize(rows: RunRow[]): Summary[] {
  const groups = new Map<string, RunRow[]>();
  for (const r of rows) {
    const k = `${r.set}\0${r.contender}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const first = g[0] as RunRow;
    const bad = g.find((r) => !r.ok);
    return {
      set: first.set,
      contender: first.contender,
      runs: g.length,
      wall: median(g.map((r) => r.wallSeconds)),
      ops: median(g.map((r) => r.objectsPerSecond)),
      cpuPer1000: median(g.map((r) => r.cpuSecondsPer1000)),
      rss: median(g.map((r) => r.peakRssMiB)),
      ok: !bad,
      verdict: bad ? `${verdictText(bad.verdict)}${bad.exitCode !== 0 ? `, exit ${bad.exitCode}` : ''}` : 'ok',
    };
  });
}

const round = (n: number): number => Number(n.toFixed(3));
const usable = (s: Summary | undefined): s is Summary => s !== undefined && Number.isFinite(s.ops) && s.ops > 0;

/**
 * The latency set's entry: ours against the AWS CLI at its defaults. The AWS CLI with REPLACE drops
 * metadata on SeaweedFS (without it SeaweedFS refuses the copy): a yardstick for speed, like the ceiling.
 */
function latencyRatios(get: (name: string) => Summary | undefined): Record<string, number | null> {
  const cli = get('ours-cli');
  const cliOk = usable(cli) && cli.ok;
  const ceil = get('ceiling');
  const aws = get('aws-cli-replace');
  const aws60 = get('aws-cli-60-replace');
  const sweep = (n: number): number | null => {
    const c = get(`ours-cli-c${n}`);
    return usable(c) && c.ok ? round(c.ops) : null;
  };
  return {
    latencyVsAwsCli: cliOk && usable(aws) ? round(cli.ops / aws.ops) : null,
    latencyVsAwsCli60: cliOk && usable(aws60) ? round(cli.ops / aws60.ops) : null,
    oursObjPerSecond: cliOk ? round(cli.ops) : null,
    oursCpuPer1000: cliOk ? round(cli.cpuPer1000) : null,
    awsCliCpuPer1000: usable(aws) ? round(aws.cpuPer1000) : null,
    ceilingObjPerSecond: usable(ceil) ? round(ceil.ops) : null,
    // Re-encrypting takes one copy per object whatever else a client sends; the ceiling sends only that
    // copy, 128 in flight: the most any re-encrypting client could reach against the AWS CLI here.
    ceilingVsAwsCli: usable(ceil) && usable(aws) ? round(ceil.ops / aws.ops) : null,
    concurrency8ObjPerSecond: sweep(8),
    concurrency32ObjPerSecond: sweep(32),
    concurrency128ObjPerSecond: sweep(128),
    concurrency256ObjPerSecond: sweep(256),
  };
}

/**
 * The issue-13 ratios per data set (README "Ratios"). The ceiling and s5cmd drop metadata on
 * SeaweedFS, so they are reference points for speed and CPU, not correct contenders; a ratio is
 * null where a side is missing or ours failed.
 */
export function ratios(summary: Summary[]): Record<string, Record<string, number | null>> {
  const out: Record<string, Record<string, number | null>> = {};
  for (const set of new Set(summary.map((s) => s.set))) {
    const get = (name: string): Summary | undefined => summary.find((s) => s.set === set && s.contender === name);
    if (set.startsWith('latency')) {
      out[set] = latencyRatios(get);
      continue;
    }
    const cli = get('ours-cli');
    const op = get('ours-operator');
    const ceil = get('ceiling');
    const s5 = get('s5cmd');
    const cliOk = usable(cli) && cli.ok;
    const opOk = cliOk && usable(op) && op.ok;
    out[set] = {
      cliVsCeiling: cliOk && usable(ceil) ? round(cli.ops / ceil.ops) : null,
      cpuVsCeiling: cliOk && usable(ceil) ? round(cli.cpuPer1000 / ceil.cpuPer1000) : null,
      cpuVsS5cmd: cliOk && usable(s5) ? round(cli.cpuPer1000 / s5.cpuPer1000) : null,
      operatorVsCli: opOk ? round(op.ops / cli.ops) : null,
      operatorCpuVsCli: opOk ? round(op.cpuPer1000 / cli.cpuPer1000) : null,
      operatorRssDeltaMiB: opOk ? round(op.rss - cli.rss) : null,
    };
  }
  return out;
}

export interface RatioStat {
  /** Median over the runs that gave a value (null: none did). */
  median: number | null;
  min: number | null;
  max: number | null;
  /** Per run, in run order (null: a side missing or wrong in that run). */
  runs: (number | null)[];
}

/** Each ratio computed within each run (both sides measured minutes apart), then its median and spread. */
export function ratioStats(rows: RunRow[]): Record<string, Record<string, RatioStat>> {
  const runNumbers = [...new Set(rows.map((r) => r.run))].sort((a, b) => a - b);
  const perRun = runNumbers.map((run) => ratios(summarize(rows.filter((r) => r.run === run))));
  const out: Record<string, Record<string, RatioStat>> = {};
  for (const set of new Set(rows.map((r) => r.set))) {
    const names = new Set(perRun.flatMap((p) => Object.keys(p[set] ?? {})));
    const stats: Record<string, RatioStat> = {};
    for (const name of names) {
      const values = perRun.map((p) => p[set]?.[name] ?? null);
      const seen = values.filter((v): v is number => v !== null && Number.isFinite(v));
      stats[name] = {
        median: seen.length ? round(median(seen)) : null,
        min: seen.length ? Math.min(...seen) : null,
        max: seen.length ? Math.max(...seen) : null,
        runs: values,
      };
    }
    out[set] = stats;
  }
  return out;
}

/** The medians alone, in the shape `ratios` had before there were several runs (results JSON `ratios`). */
export function ratioMedians(
  stats: Record<string, Record<string, RatioStat>>,
): Record<string, Record<string, number | null>> {
  return Object.fromEntries(
    Object.entries(stats).map(([set, s]) => [
      set,
      Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.median])),
    ]),
  );
}

/** "0.93 (0.88–0.97 over 3 runs)" or "0.93" for one run, "-" for none. */
export function ratioText(s: RatioStat): string {
  if (s.median === null) return '-';
  const counted = s.runs.filter((v) => v !== null).length;
  return counted > 1 ? `${s.median} (${s.min}–${s.max} over ${counted} runs)` : String(s.median);
}
