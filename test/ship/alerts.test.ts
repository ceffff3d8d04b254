// The alerts and the Grafana dashboard, checked by Prometheus's own promtool:
// the rules file is valid, every alert has a unit test that passes, every
// PromQL expression of the dashboard parses, every metric they name is one the
// operator exports (src/metrics.ts), and every runbook_url has its runbook.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { toolPath } from '../harness/process.js';
import { CHART, ROOT, run } from './tools.js';

const RULES = join(CHART, 'alerts', 's3-encryption-operator.rules.yaml');
const RULE_TESTS = join(ROOT, 'test', 'ship', 'promtool', 'alerts.test.yaml');
const DASHBOARD = join(CHART, 'dashboards', 's3-encryption-operator.json');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
}

const rules = (): Rule[] =>
  (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const dashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const dashboardExprs = (): { panel: string; expr: string }[] =>
  dashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** The series names the operator exports, with the suffixes of histograms. */
function exportedMetrics(): Set<string> {
  const source = readFileSync(join(ROOT, 'src', 'metrics.ts'), 'utf8');
  const names = new Set<string>(['up']);
  for (const m of source.matchAll(/new (Counter|Gauge|Histogram)\(\{\s*name: '([a-z_:][a-z0-9_:]*)'/g)) {
    const [, type, name] = m;
    if (!name) continue;
    if (type === 'Histogram') for (const s of ['_bucket', '_count', '_sum']) names.add(name + s);
    else names.add(name);
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers followed by a selector or a range. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)/g)].map((m) => m[1] ?? '');
}

describe('alerts (promtool)', () => {
  const promtool = toolPath('promtool');

  it('promtool check rules accepts the rules file', async () => {
    const result = await run(promtool, ['check', 'rules', RULES]);
    expect(result.stdout).toContain(`SUCCESS: ${rules().length} rules found`);
  });

  it('promtool test rules passes, and every alert has a unit test that expects it to fire', async () => {
    const result = await run(promtool, ['test', 'rules', RULE_TESTS], { allowFailure: true });
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.code).toBe(0);
    const tests = parse(readFileSync(RULE_TESTS, 'utf8')) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const firing = new Set(
      tests.tests.flatMap((t) =>
        (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
      ),
    );
    const silent = new Set(
      tests.tests.flatMap((t) =>
        (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname),
      ),
    );
    for (const r of rules()) {
      if (!r.alert) continue;
      expect(firing, `${r.alert} has a test where it fires`).toContain(r.alert);
      expect(silent, `${r.alert} has a test where it stays silent`).toContain(r.alert);
    }
  });

  it('the alerts job failed, stalled, failure ratio, throttling, operator down and no leader are all there, with severity, summary and runbook', () => {
    const names = rules().map((r) => r.alert);
    expect(names).toEqual([
      'S3EncryptionJobFailed',
      'S3EncryptionJobStalled',
      'S3EncryptionHighFailureRatio',
      'S3EncryptionThrottled',
      'S3EncryptionOperatorDown',
      'S3EncryptionOperatorNoLeader',
    ]);
    for (const r of rules()) {
      expect(['critical', 'warning', 'info'], `${r.alert} severity`).toContain(r.labels?.severity);
      expect(r.annotations?.summary, `${r.alert} summary`).toBeTruthy();
      expect(r.annotations?.description, `${r.alert} description`).toBeTruthy();
    }
  });

  it('every runbook_url points at a runbook in docs/runbooks/', () => {
    for (const r of rules()) {
      const url = r.annotations?.runbook_url ?? '';
      const m = /\/docs\/runbooks\/([a-z0-9-]+\.md)$/.exec(url);
      expect(m, `${r.alert}: ${url}`).not.toBeNull();
      const file = join(ROOT, 'docs', 'runbooks', m?.[1] ?? '');
      expect(existsSync(file), `${r.alert}: ${file}`).toBe(true);
      expect(readFileSync(file, 'utf8'), file).toContain(r.alert ?? '');
    }
  });
});

describe('Grafana dashboard', () => {
  const promtool = toolPath('promtool');

  it('every PromQL expression parses (promtool check rules on them as recording rules)', async () => {
    const vars: Record<string, string> = {
      namespace: '.*',
      job: '.*',
      scrape_job: 's3-encryption-operator',
      __rate_interval: '1m',
    };
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(20);
    const recording = exprs.map(({ expr }, i) => {
      const concrete = expr.replace(/\$(\w+)/g, (_m, name: string) => {
        const value = vars[name];
        if (value === undefined) throw new Error(`unknown variable $${name} in ${expr}`);
        return value;
      });
      return { record: `s3eo_dashboard:expr_${i}`, expr: concrete };
    });
    const dir = mkdtempSync(join(tmpdir(), 's3eo-dashboard-'));
    const file = join(dir, 'dashboard.rules.yaml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: recording }] }));
    const result = await run(promtool, ['check', 'rules', file], { allowFailure: true });
    expect(result.stdout + result.stderr).toContain(`SUCCESS: ${recording.length} rules found`);
  });

  it('the alerts and the dashboard name only metrics the operator exports', () => {
    const exported = exportedMetrics();
    expect(exported.has('s3encryption_objects_total')).toBe(true);
    const used = [
      ...rules().map((r) => ({ where: r.alert ?? '', expr: r.expr })),
      ...dashboardExprs().map((e) => ({ where: e.panel, expr: e.expr })),
    ];
    for (const { where, expr } of used) {
      for (const metric of metricsIn(expr)) expect(exported, `${where}: ${metric}`).toContain(metric);
    }
  });

  it('has the panels the operator is watched by, the namespace/job variables, and a sane layout', () => {
    const d = dashboard();
    expect(d.uid).toBe('s3-encryption-operator');
    const variables = d.templating.list.map((v) => v.name);
    expect(variables).toEqual(expect.arrayContaining(['datasource', 'namespace', 'job']));
    const titles = d.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const words of [
      'jobs by condition',
      'objects/s by result',
      'bytes',
      'progress',
      'progress per shard',
      'eta',
      'failed',
      'throttling',
      's3 latency',
      'kms latency',
      'reconcile',
      'work queue',
    ]) {
      expect(titles, words).toContain(words);
    }
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    // No panel sticks out of the 24-column grid or overlaps another.
    const cells = new Set<string>();
    for (const p of d.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const cell = `${i},${j}`;
          expect(cells.has(cell), `${p.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
      if (p.type !== 'row') expect(p.datasource?.uid, p.title).toBe('${datasource}');
    }
    // Every variable used is defined (or one of Grafana's own).
    for (const { panel, expr } of dashboardExprs()) {
      for (const m of expr.matchAll(/\$(\w+)/g)) {
        const name = m[1] ?? '';
        expect(name.startsWith('__') || variables.includes(name), `${panel}: $${name}`).toBe(true);
      }
    }
  });
});
