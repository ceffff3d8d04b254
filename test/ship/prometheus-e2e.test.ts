// The dashboard and the alerts against a real Prometheus (built from its Go
// module by test/env/build-tools.sh) scraping a real operator: one operator
// process (least privilege identity, leader election on, as the chart runs it) watching this
// file's namespace runs a KMS job to completion, a dry run, a job on a missing
// bucket (Failed), a job suspended mid-run, and a slow job behind a fault proxy
// (delayed and throttled CopyObject) that is still Progressing while we look.
// Prometheus scrapes the metrics endpoint every second the way the chart's
// ServiceMonitor does (job relabelled to "s3-encryption-operator", honor_labels,
// the target's own namespace label different from the jobs'), and loads the
// alert rules file. Then every PromQL expression of the dashboard (variables
// substituted) and every alert expr is run through /api/v1/query: each must
// evaluate and return data, except the listed alerts that are quiet by design,
// whose selectors must return data instead.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { stringify, parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createBucket,
  createCredentialsSecret,
  createNamespace,
  getJob,
  kubectl,
  putObjects,
  s3Client,
  startOperator,
  uniqueName,
  type JobManifest,
  type OperatorProcess,
  waitUntil,
} from '../harness/context.js';
import { applyJob } from '../harness/jobs.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { freePort } from '../harness/ports.js';
import { startProcess, toolPath, type ManagedProcess } from '../harness/process.js';
import { CHART } from './tools.js';

const RULES = join(CHART, 'alerts', 's3-encryption-operator.rules.yaml');
const DASHBOARD = join(CHART, 'dashboards', 's3-encryption-operator.json');
/** The job label the ServiceMonitor's relabelling sets; the alerts and the dashboard select on it. */
const SCRAPE_JOB = 's3-encryption-operator';
/** The namespace label of the scrape target (the release namespace), unlike the jobs' own. */
const RELEASE_NAMESPACE = 's3eo-system';
/** Grafana's $__rate_interval for a 15 s data source scrape interval (4 x 15 s). */
const RATE_INTERVAL = '1m';

/**
 * Alerts that must stay silent while the operator is healthy, and why; for each,
 * the parts of its expr (copied verbatim, whitespace aside) without the threshold,
 * which must return data so that we know the alert looks at live series.
 */
const QUIET_BY_DESIGN: Record<string, { why: string; selectors: string[] }> = {
  S3EncryptionJobStalled: {
    why: 'the only Progressing job ("slow") finishes objects all the time, so "unless" removes it',
    selectors: [
      'max by (namespace, name) (s3encryption_job_condition{job="s3-encryption-operator", condition="Progressing"}) == 1',
      'sum by (namespace, name) (increase(s3encryption_objects_total{job="s3-encryption-operator"}[5m])) > 0',
    ],
  },
  S3EncryptionHighFailureRatio: {
    why: 'no object fails in this run (failed == 0 for every job)',
    selectors: [
      'sum by (namespace, name) (rate(s3encryption_objects_total{job="s3-encryption-operator", result="failed"}[10m])) / sum by (namespace, name) (rate(s3encryption_objects_total{job="s3-encryption-operator"}[10m]))',
    ],
  },
  S3EncryptionThrottled: {
    why: 'the fault proxy throttles a few CopyObject calls of one slow job: far below 1 event/s',
    selectors: [
      'sum by (namespace, name, service) (rate(s3encryption_throttling_events_total{job="s3-encryption-operator"}[5m]))',
    ],
  },
  S3EncryptionOperatorDown: {
    why: 'the operator is up and scraped',
    selectors: ['up{job="s3-encryption-operator"} == 1'],
  },
  S3EncryptionOperatorNoLeader: {
    why: 'the operator holds its Lease',
    selectors: ['sum(leader_election_master_status{job="s3-encryption-operator"})'],
  },
};

/**
 * Dashboard expressions that may be empty until a fix in src/ (see the reason);
 * they must still evaluate. Matched by a substring of the expression.
 */
const EMPTY_UNTIL_SRC_FIX: { match: string; why: string }[] = [];

const info = inject('seaweed');
let s3: S3Client | undefined;
let namespace: string;
let operator: OperatorProcess | undefined;
let prometheus: ManagedProcess | undefined;
let proxy: FaultProxy | undefined;
let promUrl: string;

const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> =>
  waitUntil(
    what,
    fn,
    timeoutMs,
    () => `operator:\n${operator?.logTail(20) ?? ''}\nprometheus:\n${prometheus?.logTail(20) ?? ''}`,
  );

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}
interface QueryResponse {
  status: 'success' | 'error';
  data?: { resultType: string; result: Sample[] };
  errorType?: string;
  error?: string;
}

async function query(expr: string): Promise<QueryResponse> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as QueryResponse;
}

/** Evaluates `expr`; fails the test with Prometheus's error when it does not evaluate. */
async function evaluate(expr: string): Promise<Sample[]> {
  const r = await query(expr);
  expect(r.status, `${expr}: ${r.errorType ?? ''} ${r.error ?? ''}`).toBe('success');
  return r.data?.result ?? [];
}

function keys(n: number, prefix = 'p/'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
}

/** Whitespace-insensitive form of an expression, to find a selector in an expr. */
const compact = (expr: string): string => expr.replace(/\s+/g, '');

interface Rule {
  alert?: string;
  expr: string;
}
interface Panel {
  title: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

const alertRules = (): Rule[] =>
  (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups
    .flatMap((g) => g.rules)
    .filter((r) => r.alert);

function dashboardExprs(): { panel: string; expr: string }[] {
  const walk = (panels: Panel[]): { panel: string; expr: string }[] =>
    panels.flatMap((p) => [
      ...(p.targets ?? []).flatMap((t) => (t.expr ? [{ panel: p.title, expr: t.expr }] : [])),
      ...walk(p.panels ?? []),
    ]);
  return walk((JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }).panels);
}

/** The dashboard's variables as Grafana would fill them in: this namespace, all jobs. */
function substitute(expr: string): string {
  const values: Record<string, string> = {
    namespace: namespace,
    job: '.*',
    scrape_job: SCRAPE_JOB,
    __rate_interval: RATE_INTERVAL,
    __interval: '15s',
    __range: '5m',
  };
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    const value = values[name];
    if (value === undefined) throw new Error(`unknown dashboard variable $${name} in ${expr}`);
    return value;
  });
}

async function apply(
  j: Omit<JobManifest, 'namespace' | 's3'>,
  s3Endpoint = info.s3Endpoint,
  spec: Record<string, unknown> = {},
): Promise<void> {
  await applyJob({ ...j, namespace, s3: { ...info, s3Endpoint } }, spec);
}

async function waitFor(name: string, condition: string, timeout = 60): Promise<void> {
  const res = await kubectl(
    ['wait', `--for=condition=${condition}`, `--timeout=${timeout}s`, '-n', namespace, `ej/${name}`],
    { allowFailure: true },
  );
  if (res.code !== 0) {
    const job = await getJob(namespace, name);
    throw new Error(`ej/${name} not ${condition}: ${JSON.stringify(job.status)}\n${operator?.logTail(30) ?? ''}`);
  }
}

/** What each job's s3encryption_job_condition must say in Prometheus before we look. */
const EXPECTED_CONDITIONS: Record<string, string> = {
  kms: 'Complete',
  dry: 'Complete',
  nobucket: 'Failed',
  susp: 'Suspended',
  slow: 'Progressing',
};

beforeAll(async () => {
  const started = Date.now();
  s3 = s3Client(info);
  namespace = await createNamespace('prom');
  await createCredentialsSecret(namespace, info);
  operator = await startOperator({
    watchNamespace: namespace,
    args: [
      '--leader-elect',
      `--leader-election-namespace=${namespace}`,
      `--leader-election-id=${uniqueName('s3eo-prom')}`,
    ],
  });

  // Prometheus, configured like the chart's ServiceMonitor renders into a scrape config.
  const workDir = join(inject('workDir'), uniqueName('prometheus'));
  mkdirSync(join(workDir, 'data'), { recursive: true });
  const metrics = new URL(operator.metricsUrl);
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: [RULES],
    scrape_configs: [
      {
        job_name: `serviceMonitor/${RELEASE_NAMESPACE}/s3-encryption-operator/0`,
        honor_labels: true,
        metrics_path: metrics.pathname,
        static_configs: [
          {
            targets: [metrics.host],
            labels: {
              namespace: RELEASE_NAMESPACE,
              service: 's3-encryption-operator-metrics',
              pod: 's3-encryption-operator-0',
              endpoint: 'metrics',
            },
          },
        ],
        relabel_configs: [{ target_label: 'job', replacement: SCRAPE_JOB }],
      },
    ],
  };
  const configFile = join(workDir, 'prometheus.yml');
  writeFileSync(configFile, stringify(config));
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = await startProcess({
    name: 'prometheus',
    command: toolPath('prometheus'),
    args: [
      `--config.file=${configFile}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${join(workDir, 'data')}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    logDir: workDir,
    ready: async () => (await fetch(`${promUrl}/-/ready`)).ok,
    timeoutMs: 30_000,
  });

  // Slow and throttled, on CopyObject only: every copy is delayed ~1 s or answered SlowDown.
  proxy = await startFaultProxy({
    target: info.s3Endpoint,
    protocol: 's3',
    seed: 11,
    rates: { throttle: 0.3, latency: 0.7, latencyMs: [800, 1200], operations: ['CopyObject'] },
  });

  const client = s3;
  const [kmsBucket, dryBucket, suspBucket, slowBucket] = await Promise.all([
    createBucket(client, 'pkms'),
    createBucket(client, 'pdry'),
    createBucket(client, 'psusp'),
    createBucket(client, 'pslow'),
  ]);
  await Promise.all([
    putObjects(client, kmsBucket, keys(200)),
    putObjects(client, dryBucket, keys(100)),
    putObjects(client, suspBucket, keys(800)),
    putObjects(client, slowBucket, keys(400)),
  ]);

  // Sharded (two shards in the operator's process): the dashboard's per-shard panels have data.
  await apply(
    { name: 'kms', bucket: kmsBucket, encryption: { type: 'aws:kms', kmsKeyId: 'alias/test-key-a' } },
    info.s3Endpoint,
    { parallelism: 2 },
  );
  await apply({ name: 'dry', bucket: dryBucket, encryption: { type: 'AES256' }, dryRun: true, concurrency: 2 });
  await apply({ name: 'nobucket', bucket: 'no-such-bucket-s3eo-prom', encryption: { type: 'AES256' } });
  await apply({ name: 'susp', bucket: suspBucket, encryption: { type: 'AES256' }, concurrency: 1 });
  await apply({ name: 'slow', bucket: slowBucket, encryption: { type: 'AES256' }, concurrency: 2 }, proxy.url);

  await until('ej/susp to make some progress', async () => {
    const j = await getJob(namespace, 'susp');
    return (j.status?.progress?.scanned ?? 0) > 30 ? j : undefined;
  });
  await kubectl(['patch', 'ej', 'susp', '-n', namespace, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
  await Promise.all([
    waitFor('kms', 'Complete'),
    waitFor('dry', 'Complete'),
    waitFor('nobucket', 'Failed'),
    waitFor('susp', 'Suspended'),
  ]);
  const kms = await getJob(namespace, 'kms');
  expect(kms.status?.progress).toMatchObject({ scanned: 200, encrypted: 200, failed: 0 });

  // Prometheus has scraped the final state of every job, a throttling event of the slow job and
  // progress of it over two scrapes (an increase over [5m] needs two samples in the window)...
  const seenAt = await until('Prometheus to see every job in its expected state', async () => {
    const conditions = await evaluate(`s3encryption_job_condition{job="${SCRAPE_JOB}", namespace="${namespace}"} == 1`);
    const seen = conditions.map((s) => `${s.metric.name ?? ''}=${s.metric.condition ?? ''}`).sort();
    const want = Object.entries(EXPECTED_CONDITIONS)
      .map(([name, condition]) => `${name}=${condition}`)
      .sort();
    if (JSON.stringify(seen) !== JSON.stringify(want)) return undefined;
    const throttled = await evaluate(
      `s3encryption_throttling_events_total{job="${SCRAPE_JOB}", namespace="${namespace}", name="slow"}`,
    );
    const moving = await evaluate(
      `increase(s3encryption_objects_total{job="${SCRAPE_JOB}", namespace="${namespace}", name="slow"}[5m]) > 0`,
    );
    return throttled.length > 0 && moving.length > 0 ? conditions[0]!.value[0] : undefined;
  });
  // ...and two more scrapes after that, so that every series it has seen has at least two
  // samples in any rate window.
  await until('two more scrapes', async () => {
    const lastScrape = Number((await evaluate(`timestamp(up{job="${SCRAPE_JOB}"})`))[0]?.value[1] ?? 0);
    return lastScrape >= seenAt + 2 ? true : undefined;
  });
  console.log(
    `prometheus-e2e: operator, Prometheus and 5 jobs ready in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}, 120_000);

afterAll(async () => {
  // Each stop on its own: one that fails must not leave the others running.
  const stops = [() => prometheus?.stop(), () => operator?.stop(), () => proxy?.stop()];
  for (const stop of stops)
    await Promise.resolve(stop()).catch((err: unknown) => console.error(`prometheus-e2e cleanup: ${String(err)}`));
  s3?.destroy();
});

describe('dashboard and alerts against a real Prometheus', () => {
  it('scrapes the operator with the ServiceMonitor labels: the jobs keep their own namespace label', async () => {
    const up = await evaluate(`up{job="${SCRAPE_JOB}"}`);
    expect(up.map((s) => s.value[1])).toEqual(['1']);
    // The dashboard's $namespace and $job variables (label_values over s3encryption_job_condition).
    const ns = (await (
      await fetch(`${promUrl}/api/v1/label/namespace/values?match[]=s3encryption_job_condition`)
    ).json()) as { data: string[] };
    expect(ns.data).toEqual([namespace]);
    const names = (await (
      await fetch(
        `${promUrl}/api/v1/label/name/values?match[]=${encodeURIComponent(`s3encryption_job_condition{namespace=~"${namespace}"}`)}`,
      )
    ).json()) as { data: string[] };
    expect(names.data).toEqual(Object.keys(EXPECTED_CONDITIONS).sort());
    // Controller metrics (no namespace label of their own) carry the target's.
    expect((await evaluate(`controller_runtime_reconcile_total{job="${SCRAPE_JOB}"}`))[0]?.metric.namespace).toBe(
      RELEASE_NAMESPACE,
    );
  });

  it("per-shard gauges follow status.shards: the sharded job's shards are complete and add up to its objects", async () => {
    const sel = `{job="${SCRAPE_JOB}", namespace="${namespace}", name="kms"}`;
    const ratios = await evaluate(`s3encryption_shard_progress_ratio${sel}`);
    expect(ratios.map((s) => [s.metric.shard, s.value[1]]).sort()).toEqual([
      ['0', '1'],
      ['1', '1'],
    ]);
    const encrypted = await evaluate(
      `sum(s3encryption_shard_objects{job="${SCRAPE_JOB}", namespace="${namespace}", name="kms", result="encrypted"})`,
    );
    expect(encrypted[0]?.value[1]).toBe('200');
    const complete = await evaluate(
      `s3encryption_shard_phase{job="${SCRAPE_JOB}", namespace="${namespace}", name="kms", phase="Complete"} == 1`,
    );
    expect(complete).toHaveLength(2);
    // Jobs that run as one shard have no shard series.
    expect(
      await evaluate(`s3encryption_shard_objects{job="${SCRAPE_JOB}", namespace="${namespace}", name!="kms"}`),
    ).toEqual([]);
  });

  it('every dashboard expression evaluates and returns data', async () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(20);
    const empty: string[] = [];
    const report: string[] = [];
    for (const { panel, expr } of exprs) {
      const concrete = substitute(expr);
      const result = await evaluate(concrete);
      const gap = EMPTY_UNTIL_SRC_FIX.find((g) => expr.includes(g.match));
      report.push(`${String(result.length).padStart(3)} series  ${panel}${gap ? ' (may be empty until src fix)' : ''}`);
      if (result.length === 0 && !gap) empty.push(`${panel}: ${concrete}`);
    }
    console.log(`dashboard expressions:\n${report.join('\n')}`);
    expect(empty, 'dashboard expressions without data').toEqual([]);
    // Every entry of the list is still about an expression of the dashboard.
    for (const g of EMPTY_UNTIL_SRC_FIX)
      expect(
        exprs.some((e) => e.expr.includes(g.match)),
        g.match,
      ).toBe(true);
  });

  it('every alert expression evaluates; it returns data unless it is quiet by design, and then its selectors do', async () => {
    const rules = alertRules();
    expect(rules.length).toBeGreaterThanOrEqual(6);
    for (const name of Object.keys(QUIET_BY_DESIGN))
      expect(
        rules.map((r) => r.alert),
        name,
      ).toContain(name);
    for (const rule of rules) {
      const result = await evaluate(rule.expr);
      const quiet = QUIET_BY_DESIGN[rule.alert ?? ''];
      if (!quiet) {
        expect(result.length, `${rule.alert} returns data`).toBeGreaterThan(0);
        continue;
      }
      expect(result, `${rule.alert} is quiet (${quiet.why})`).toEqual([]);
      for (const selector of quiet.selectors) {
        expect(compact(rule.expr), `${rule.alert}: selector copied from its expr`).toContain(compact(selector));
        expect((await evaluate(selector)).length, `${rule.alert}: ${selector} returns data`).toBeGreaterThan(0);
      }
    }
    // The one alert that must fire: the job on a missing bucket.
    const failed = await evaluate(rules.find((r) => r.alert === 'S3EncryptionJobFailed')!.expr);
    expect(failed.map((s) => `${s.metric.namespace}/${s.metric.name}`)).toEqual([`${namespace}/nobucket`]);
  });

  it('Prometheus evaluates the rules file itself: every rule healthy, only S3EncryptionJobFailed firing', async () => {
    interface RuleState {
      name: string;
      health: string;
      lastError?: string;
      state: string;
      alerts: { labels: Record<string, string>; state: string }[];
    }
    const res = (await (await fetch(`${promUrl}/api/v1/rules?type=alert`)).json()) as {
      data: { groups: { rules: RuleState[] }[] };
    };
    const states = res.data.groups.flatMap((g) => g.rules);
    expect(states.map((r) => r.name).sort()).toEqual(
      alertRules()
        .map((r) => r.alert)
        .sort(),
    );
    for (const r of states) {
      expect(r.health, `${r.name}: ${r.lastError ?? ''}`).toBe('ok');
      if (r.name === 'S3EncryptionJobFailed') {
        expect(r.state).toBe('firing');
        expect(r.alerts.map((a) => a.labels.name)).toEqual(['nobucket']);
      } else {
        expect(r.state, r.name).toBe('inactive');
      }
    }
  });
});
