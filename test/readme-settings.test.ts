import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { databaseSettings, describeSettings, natsSettings, type SettingsSchema } from '@bstore/platform';
import { MODULES, SERVICE_NAMES } from '../apps/launcher/src/registry.ts';
import { processSettings } from '../apps/launcher/src/service-config.ts';

/**
 * The README's table "Environment of a service process" against the schemas the services read
 * their settings by (issue 19): every variable of a schema has a row, with the schema's default and
 * exactly the services that read it; and one variable read by two services has one default.
 */

const README = readFileSync(join(import.meta.dirname, '../README.md'), 'utf8');

interface Row {
  variables: string[];
  services: string[];
  defaults: string[];
}

/** The rows of the table under `heading`: its variables, the services column resolved, the defaults split like the variables. */
function tableRows(heading: string): Row[] {
  const section = README.slice(README.indexOf(heading));
  const lines = section.split('\n').slice(1);
  const start = lines.findIndex((l) => l.startsWith('|'));
  const table = lines.slice(start, lines.findIndex((l, i) => i > start && !l.startsWith('|')));
  const rows: Row[] = [];
  for (const line of table.slice(2)) {
    const cells = line.split(' | ').map((c) => c.replace(/^\|\s*/, '').trim());
    const [variableCell = '', servicesCell = '', defaultCell = ''] = cells;
    const variables = [...variableCell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] as string);
    let services: string[];
    if (servicesCell === 'all') services = [...SERVICE_NAMES];
    else if (servicesCell === 'all but gateway') services = SERVICE_NAMES.filter((s) => s !== 'gateway');
    else if (servicesCell === 'same') services = rows.at(-1)?.services ?? [];
    else services = SERVICE_NAMES.filter((s) => new RegExp(`\\b${s}\\b`).test(servicesCell.replace(/\(.*\)/g, '')));
    const parts = defaultCell.split(' / ').map((d) => d.replaceAll('`', '').trim());
    rows.push({ variables, services, defaults: parts.length === variables.length ? parts : variables.map(() => defaultCell.replaceAll('`', '').trim()) });
  }
  return rows;
}

/** Every schema a service process reads by, with the services that read it. */
function schemas(): { schema: SettingsSchema; service: string }[] {
  return MODULES.flatMap((module) => [
    { schema: module.settings, service: module.name },
    { schema: processSettings(module), service: module.name },
    ...(module.usesBus ? [{ schema: natsSettings, service: module.name }] : []),
    ...(module.migrations ? [{ schema: databaseSettings('<service>'), service: module.name }] : []),
  ]);
}

/** Each variable read by schema: its defaults (one per schema) and the services that read it. */
function variables(): Map<string, { defaults: Set<string>; services: Set<string> }> {
  const found = new Map<string, { defaults: Set<string>; services: Set<string> }>();
  for (const { schema, service } of schemas()) {
    for (const { variable, defaultText } of describeSettings(schema)) {
      const entry = found.get(variable) ?? { defaults: new Set(), services: new Set() };
      entry.defaults.add(defaultText);
      entry.services.add(service);
      found.set(variable, entry);
    }
  }
  return found;
}

describe("the README's settings table and the services' schemas", () => {
  const rows = tableRows('### Environment of a service process');
  const documented = new Map(rows.flatMap((row) => row.variables.map((v, i) => [v, { services: row.services, default: row.defaults[i] as string }] as const)));

  it('reads the table (it is where it was)', () => {
    expect(rows.length).toBeGreaterThan(30);
    expect(documented.get('BOOK_URL')).toBeDefined();
  });

  it('one variable read by two services has one default', () => {
    const disagreeing = [...variables()].filter(([, v]) => v.defaults.size > 1).map(([name, v]) => `${name}: ${[...v.defaults].join(' vs ')}`);
    expect(disagreeing).toEqual([]);
  });

  it('documents every variable a schema reads, with its default and the services that read it', () => {
    const problems: string[] = [];
    for (const [name, { defaults, services }] of variables()) {
      const row = documented.get(name);
      if (!row) {
        problems.push(`${name}: not in the table`);
        continue;
      }
      const [schemaDefault] = defaults;
      if (row.default !== schemaDefault) problems.push(`${name}: the table says ${JSON.stringify(row.default)}, the schema ${JSON.stringify(schemaDefault)}`);
      const readers = SERVICE_NAMES.filter((s) => services.has(s));
      if ([...row.services].sort().join() !== [...readers].sort().join()) problems.push(`${name}: the table says ${row.services.join(', ')}, read by ${readers.join(', ')}`);
    }
    expect(problems).toEqual([]);
  });

  it('documents no setting that no schema reads, but for identity and tracing (read by their own readers)', () => {
    const read = variables();
    const others = [...documented.keys()].filter((name) => !read.has(name) && !/^(BSTORE_AUTH_|OTEL_)/.test(name));
    expect(others.sort()).toEqual(['BSTORE_DEMO_AUTH', 'BSTORE_INTERNAL_KEY', 'BSTORE_SERVICE']);
  });
});
