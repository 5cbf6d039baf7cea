import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { EmbeddedSystem } from '@bstore/launcher';
import { eventually } from './support/harness.ts';
import { freshDatabase } from './support/postgres.ts';
import { client, startTestSystem } from './support/system.ts';

/**
 * The observability files (deploy/observability/) against the real system: the Grafana dashboard
 * and the Prometheus rules parse and have the expected shape, and every metric their PromQL names
 * is a series the five services really export (after a reservation and a cancellation, on
 * PostgreSQL so the pool gauge exists), with the labels and label values the selectors ask for.
 */
const ROOT = join(import.meta.dirname, '..');
const DASHBOARD = join(ROOT, 'deploy/observability/grafana/bstore-saga.json');
const RULES = join(ROOT, 'deploy/observability/prometheus/alerts.yaml');
const PROMETHEUS = join(ROOT, 'deploy/observability/prometheus/prometheus.yml');
const OPERATIONS = join(ROOT, 'docs/operations.md');

/** Series Prometheus makes itself, not exported by a service. */
const PROMETHEUS_OWN = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

// ---------------------------------------------------------------------------------------------
// A small PromQL scanner: enough to find the metric names and their label matchers.

type Matcher = { label: string; op: '=' | '!=' | '=~' | '!~'; value: string };
type Selector = { name: string; matchers: Matcher[] };

/** Functions, aggregations and keywords: identifiers that are never metric names. */
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2']);
/** Aggregation operators: `sum (x)`, and `sum by (l) (x)` where no parenthesis follows the name. */
const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
/** Keywords followed by a list of label names in parentheses (not an expression). */
const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

function readString(expr: string, start: number): [string, number] {
  const quote = expr[start]!;
  let i = start + 1;
  let value = '';
  while (i < expr.length && expr[i] !== quote) {
    if (expr[i] === '\\' && quote !== '`') {
      value += expr[i + 1] ?? '';
      i += 2;
    } else value += expr[i++];
  }
  if (i >= expr.length) throw new Error(`unterminated string in ${expr}`);
  return [value, i + 1];
}

function skipSpace(expr: string, i: number): number {
  while (i < expr.length && /\s/.test(expr[i]!)) i++;
  return i;
}

function readMatchers(expr: string, start: number): [Matcher[], number] {
  const matchers: Matcher[] = [];
  let i = start + 1;
  for (;;) {
    i = skipSpace(expr, i);
    if (expr[i] === '}') return [matchers, i + 1];
    if (expr[i] === ',') {
      i++;
      continue;
    }
    const label = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(expr.slice(i))?.[0];
    if (!label) throw new Error(`expected a label name at ${i} in ${expr}`);
    i = skipSpace(expr, i + label.length);
    const op = /^(=~|!~|!=|=)/.exec(expr.slice(i))?.[0] as Matcher['op'] | undefined;
    if (!op) throw new Error(`expected a matcher operator after ${label} in ${expr}`);
    i = skipSpace(expr, i + op.length);
    if (!`"'\``.includes(expr[i] ?? '')) throw new Error(`expected a quoted value after ${label}${op} in ${expr}`);
    const [value, next] = readString(expr, i);
    matchers.push({ label, op, value });
    i = next;
  }
}

/** Every vector selector in a PromQL expression (Grafana's `$variables` allowed). */
export function selectors(expr: string): Selector[] {
  const found: Selector[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) i++;
    else if (c === '#') i = expr.indexOf('\n', i) < 0 ? expr.length : expr.indexOf('\n', i);
    else if (`"'\``.includes(c)) i = readString(expr, i)[1];
    else if (c === '$') i += /^\$(\{[^}]*\}|\w+)/.exec(expr.slice(i))?.[0].length ?? 1;
    else if (c === '[') {
      // A range or subquery: durations and Grafana variables, never a metric.
      const end = expr.indexOf(']', i);
      if (end < 0) throw new Error(`unclosed [ in ${expr}`);
      i = end + 1;
    } else if (c === '{') throw new Error(`a selector without a metric name is not supported here: ${expr}`);
    else if (/[0-9.]/.test(c)) i += /^[0-9.][0-9a-zA-Z_.]*/.exec(expr.slice(i))![0].length; // numbers, durations
    else if (/[a-zA-Z_:]/.test(c)) {
      const word = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))![0];
      i += word.length;
      const next = skipSpace(expr, i);
      if (LABEL_LIST_KEYWORDS.has(word) && expr[next] === '(') {
        const end = expr.indexOf(')', next);
        if (end < 0) throw new Error(`unclosed label list after ${word} in ${expr}`);
        i = end + 1;
      } else if (KEYWORDS.has(word.toLowerCase())) {
        // an operator or modifier
      } else if (expr[next] === '(' || (AGGREGATIONS.has(word) && /^(by|without)\b/.test(expr.slice(next)))) {
        // a function or an aggregation: its arguments are read as they come
      } else if (expr[next] === '{') {
        const [matchers, end] = readMatchers(expr, next);
        found.push({ name: word, matchers });
        i = end;
      } else found.push({ name: word, matchers: [] });
    } else i++; // operators, parentheses, commas
  }
  return found;
}

export function metricNames(expr: string): string[] {
  return [...new Set(selectors(expr).map((s) => s.name))];
}

/** Grafana's `label_values(metric{...}, label)` (or `label_values(label)`): the selector and the label. */
function grafanaVariableQuery(query: string): { expr: string | null; label: string } {
  const m = /^\s*label_values\(\s*(?:(.+),)?\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(query);
  if (!m) throw new Error(`unsupported variable query: ${query}`);
  return { expr: m[1] ?? null, label: m[2]! };
}

describe('the PromQL scanner', () => {
  it('finds bare names, names with matchers and names with ranges, and nothing else', () => {
    expect(metricNames('up')).toEqual(['up']);
    expect(metricNames('rate(foo_total[5m])')).toEqual(['foo_total']);
    expect(metricNames('sum by (le, stage) (rate(x_bucket{stage="reserve"}[$__rate_interval]))')).toEqual(['x_bucket']);
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) > 1')).toEqual(['a_bucket']);
    expect(metricNames('max by (service, consumer) (lag) > 0 and on (service, consumer) sum by (service, consumer) (rate(ev{result!="retry"}[5m])) == 0')).toEqual(['lag', 'ev']);
    expect(metricNames('sum(rate(a{s=~"5.."}[5m])) / sum(rate(a[5m])) > 0.05')).toEqual(['a']);
    expect(metricNames('a * on (x) group_left (y) b offset 5m')).toEqual(['a', 'b']);
    expect(metricNames('sum without (instance) (a) unless b')).toEqual(['a', 'b']);
    expect(metricNames('max by (service) (a) > 60')).toEqual(['a']);
    expect(metricNames('topk(3, sum by(x)(a))')).toEqual(['a']);
    expect(metricNames('label_replace(a, "dst", "$1", "src", "(.*)")')).toEqual(['a']);
    expect(metricNames('max_over_time(a[1h:1m]) - 1e3')).toEqual(['a']);
  });

  it('reads label matchers, with strings that contain braces, commas and escaped quotes', () => {
    expect(selectors('a{x="1", y=~"a,b}", z!="q\\"r", w!~`v`}')).toEqual([
      { name: 'a', matchers: [
        { label: 'x', op: '=', value: '1' },
        { label: 'y', op: '=~', value: 'a,b}' },
        { label: 'z', op: '!=', value: 'q"r' },
        { label: 'w', op: '!~', value: 'v' },
      ] },
    ]);
    expect(selectors('a{service=~"$service"}')).toEqual([{ name: 'a', matchers: [{ label: 'service', op: '=~', value: '$service' }] }]);
  });

  it('refuses what it cannot read rather than guess', () => {
    expect(() => selectors('{__name__="a"}')).toThrow(/without a metric name/);
    expect(() => selectors('a{x="1"')).toThrow();
    expect(() => grafanaVariableQuery('query_result(up)')).toThrow(/unsupported/);
    expect(grafanaVariableQuery('label_values(a{b="c"}, service)')).toEqual({ expr: 'a{b="c"}', label: 'service' });
  });
});

// ---------------------------------------------------------------------------------------------
// The files.

type Target = { expr?: string; refId?: string };
type Panel = { id: number; type: string; title: string; gridPos: unknown; targets?: Target[]; fieldConfig?: { defaults?: { unit?: string } }; panels?: Panel[] };
type Dashboard = { uid: string; title: string; schemaVersion: number; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] } };
type Rule = { alert?: string; record?: string; expr?: string; for?: string; labels?: { severity?: string }; annotations?: { summary?: string; description?: string; runbook_url?: string } };
type Rules = { groups: { name: string; rules: Rule[] }[] };

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const rules = parseYaml(readFileSync(RULES, 'utf8')) as Rules;
const allRules = rules.groups.flatMap((g) => g.rules);
const queryPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');

function variableQueries(): { name: string; expr: string | null; label: string }[] {
  return dashboard.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => ({ name: v.name, ...grafanaVariableQuery(typeof v.query === 'string' ? v.query : (v.query as { query: string }).query) }));
}

/** Every PromQL expression of the dashboard and the rules, with where it comes from. */
function expressions(): { where: string; expr: string }[] {
  return [
    ...queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr ?? '' }))),
    ...variableQueries().flatMap((v) => (v.expr ? [{ where: `variable ${v.name}`, expr: v.expr }] : [])),
    ...allRules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr ?? '' })),
  ];
}

/** GitHub's anchor for a Markdown heading. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}

describe('deploy/observability files', () => {
  it('the dashboard: schema, data source and service variables, unique stable ids, every panel with a unit and PromQL targets', () => {
    expect(dashboard.uid).toBe('bstore-saga');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const variables = dashboard.templating.list;
    expect(variables.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.find((v) => v.name === 'service')).toMatchObject({ type: 'query' });
    const ids = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
    const rows = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);
    expect(rows).toEqual(['Saga', 'Outbox', 'Consumers', 'Book call', 'Process']);
    for (const panel of queryPanels) {
      expect(panel.gridPos, `panel ${panel.id}`).toBeTruthy();
      expect(panel.fieldConfig?.defaults?.unit, `unit of panel ${panel.id} "${panel.title}"`).toBeTruthy();
      expect(panel.targets?.length, `targets of panel ${panel.id} "${panel.title}"`).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.expr?.trim(), `expr of panel ${panel.id} "${panel.title}" ${target.refId}`).toBeTruthy();
    }
  });

  it('the rules: every alert has expr, for, severity, summary, description and a runbook anchor that docs/operations.md has', () => {
    const headings = new Set(
      readFileSync(OPERATIONS, 'utf8')
        .split('\n')
        .filter((line) => /^#{1,6} /.test(line))
        .map((line) => anchorOf(line.replace(/^#+ /, ''))),
    );
    expect(rules.groups.map((g) => g.name)).toContain('bstore');
    expect(allRules.map((r) => r.alert)).toEqual([
      'OutboxOldestUnsentTooOld',
      'DeadLettersPending',
      'BookCircuitOpen',
      'SagaReserveP99High',
      'ConsumerNotConsuming',
      'HighHttpErrorRatio',
    ]);
    for (const rule of allRules) {
      expect(rule.expr?.trim(), `${rule.alert}: expr`).toBeTruthy();
      expect(rule.for, `${rule.alert}: for`).toMatch(/^\d+[smh]$/);
      expect(rule.labels?.severity, `${rule.alert}: severity`).toMatch(/^(critical|warning|info)$/);
      expect(rule.annotations?.summary, `${rule.alert}: summary`).toBeTruthy();
      expect(rule.annotations?.description, `${rule.alert}: description`).toBeTruthy();
      const anchor = /^docs\/operations\.md#(.+)$/.exec(rule.annotations?.runbook_url ?? '')?.[1];
      expect(anchor, `${rule.alert}: runbook_url`).toBeTruthy();
      expect(headings.has(anchor!), `${rule.alert}: docs/operations.md has no heading for #${anchor}`).toBe(true);
    }
  });

  it('prometheus.yml loads the rules and scrapes the six services', () => {
    const config = parseYaml(readFileSync(PROMETHEUS, 'utf8')) as {
      rule_files: string[];
      scrape_configs: { metrics_path?: string; static_configs: { targets: string[] }[] }[];
    };
    expect(config.rule_files).toContain('alerts.yaml');
    const targets = config.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets));
    expect(targets.map((t) => t.split(':').pop()).sort()).toEqual(['8081', '8082', '8083', '8084', '8085', '8088']);
    expect(config.scrape_configs.every((s) => (s.metrics_path ?? '/metrics') === '/metrics')).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Against the real metrics.

type Sample = { name: string; labels: Record<string, string> };

function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    samples.push({ name: m[1]!, labels });
  }
  return { types, samples };
}

describe('every metric the dashboard and the alerts use is exported (embedded system on PostgreSQL)', () => {
  let system: EmbeddedSystem;
  let drops: (() => Promise<void>)[] = [];
  const types = new Map<string, string>();
  const samples: Sample[] = [];

  beforeAll(async () => {
    const names = ['book', 'reservation', 'assignment', 'customercenter'] as const;
    const fresh = await Promise.all(names.map((n) => freshDatabase(`obs_${n}`)));
    drops = fresh.map((f) => f.drop);
    const databases = Object.fromEntries(names.map((n, i) => [n, { kind: 'postgres' as const, url: fresh[i]!.url, poolSize: 4 }]));
    system = await startTestSystem({ databases });

    // One reservation and its cancellation, so the saga stages, the call to book, the outbox
    // and the consumers have samples.
    const alice = client(system.urls.gateway, 'alice');
    const librarian = client(system.urls.gateway, 'librarian', 'staff');
    const { body: book } = await alice.createBook('Observability Book', 2);
    const reserved = await alice.reserve(book.bookId);
    expect(reserved.status).toBe(201);
    const id = reserved.body.reservationId;
    const pageBecomes = (status: string) =>
      eventually(`page ${id} to become ${status}`, async () => {
        const p = await librarian.page(id);
        return p.status === 200 && p.body.status === status ? true : undefined;
      });
    await pageBecomes('bookReserved');
    expect((await alice.cancel(id)).status).toBe(202);
    await pageBecomes('bookCanceled');
    // The stage is timed right after the event is stored: give it a moment, without failing here
    // (a missing series is named by the tests below).
    await eventually('the cancel stage to be timed', async () => {
      const text = await (await fetch(`${system.urls.customercenter}/metrics`)).text();
      return /bstore_saga_stage_duration_seconds_count\{[^}]*stage="cancel"/.test(text) ? true : undefined;
    }, 5000).catch(() => undefined);

    for (const [service, url] of Object.entries(system.urls)) {
      const res = await fetch(`${url}/metrics`);
      expect(res.status, `GET /metrics of ${service}`).toBe(200);
      const parsed = parseExposition(await res.text());
      for (const [name, type] of parsed.types) types.set(name, type);
      samples.push(...parsed.samples);
    }
  });

  afterAll(async () => {
    await system?.stop();
    await Promise.all(drops.map((drop) => drop()));
  });

  /**
   * The family a name's series belong to: itself, or a histogram's (summary's) _bucket, _count,
   * _sum. A histogram's bare name has no series of its own.
   */
  function family(name: string): string | undefined {
    if (types.has(name)) return types.get(name) === 'histogram' ? undefined : name;
    const m = /^(.+)_(bucket|count|sum)$/.exec(name);
    if (m && ['histogram', 'summary'].includes(types.get(m[1]!) ?? '') && (m[2] !== 'bucket' || types.get(m[1]!) === 'histogram')) return m[1];
    return undefined;
  }

  it('every metric name is a series some service exports (# TYPE), histogram suffixes allowed', () => {
    const used = new Map<string, string[]>();
    for (const { where, expr } of expressions()) for (const name of metricNames(expr)) used.set(name, [...(used.get(name) ?? []), where]);
    // What the dashboard and the alerts stand on, so a rename elsewhere cannot empty this test.
    expect([...used.keys()].map((n) => family(n) ?? n)).toEqual(
      expect.arrayContaining([
        'http_server_request_duration_seconds',
        'bstore_saga_stage_duration_seconds',
        'bstore_outbox_backlog',
        'bstore_outbox_oldest_unsent_age_seconds',
        'bstore_outbox_published_total',
        'bstore_consumer_events_total',
        'bstore_consumer_redeliveries_total',
        'bstore_consumer_lag',
        'bstore_dead_letters',
        'bstore_circuit_state',
        'bstore_book_calls_total',
        'bstore_book_call_duration_seconds',
        'bstore_book_call_retries_total',
        'nodejs_eventloop_lag_seconds',
        'process_cpu_seconds_total',
        'process_resident_memory_bytes',
        'bstore_db_pool_connections',
      ]),
    );
    const missing = [...used].filter(([name]) => !PROMETHEUS_OWN.has(name) && !family(name)).map(([name, where]) => `${name} (used by ${where.join('; ')})`);
    expect(missing, 'metrics no service exports').toEqual([]);
  });

  it('every selector matches real series: its label names exist, and its exact matchers match one sample', () => {
    const problems: string[] = [];
    const check = (where: string, name: string, matchers: Matcher[]) => {
      if (PROMETHEUS_OWN.has(name) || !family(name)) return; // reported by the test above
      const series = samples.filter((s) => s.name === name);
      if (series.length === 0) return void problems.push(`${where}: ${name} has no samples`);
      for (const m of matchers) if (!series.some((s) => m.label in s.labels)) problems.push(`${where}: ${name} has no label ${m.label}`);
      const exact = matchers.filter((m) => m.op === '=' && !m.value.includes('$'));
      if (exact.length > 0 && !series.some((s) => exact.every((m) => s.labels[m.label] === m.value))) {
        problems.push(`${where}: no sample of ${name} has ${exact.map((m) => `${m.label}="${m.value}"`).join(', ')}`);
      }
      for (const m of matchers.filter((m) => m.op === '=~' && !m.value.includes('$'))) new RegExp(`^(?:${m.value})$`); // a valid regex
    };
    for (const { where, expr } of expressions()) for (const s of selectors(expr)) check(where, s.name, s.matchers);
    for (const v of variableQueries()) {
      for (const s of v.expr ? selectors(v.expr) : []) check(`variable ${v.name}`, s.name, [...s.matchers, { label: v.label, op: '=~', value: '.+' }]);
    }
    expect(problems).toEqual([]);
  });

  it('the series the alerts need report per service as expected (sanity of the labels they group by)', () => {
    const servicesOf = (name: string) => new Set(samples.filter((s) => s.name === name).map((s) => s.labels.service));
    expect(servicesOf('bstore_circuit_state')).toEqual(new Set(['reservation']));
    expect(servicesOf('bstore_outbox_oldest_unsent_age_seconds')).toEqual(new Set(['book', 'reservation', 'assignment', 'notification']));
    expect([...servicesOf('http_server_request_duration_seconds_count')]).toEqual(expect.arrayContaining(['gateway', 'reservation', 'book', 'customercenter']));
    expect(samples.filter((s) => s.name === 'bstore_consumer_lag').every((s) => s.labels.consumer && s.labels.service)).toBe(true);
  });
});
