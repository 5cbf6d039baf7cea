import { SAMPLER_NAMES, type SamplerSpec, type TraceExport, type TracingSettings } from '@bstore/platform';
import { boolSetting, choiceSetting, ConfigError, listSetting } from './env.ts';

const EXPORTERS = ['otlp', 'console', 'none'] as const;
const PROTOCOLS = ['http/protobuf', 'http/json'] as const;

/**
 * Tracing from the standard OpenTelemetry variables (docs/operations.md, "Tracing"). Off unless
 * asked for: spans are exported when OTEL_TRACES_EXPORTER names an exporter, or, when it is
 * unset, when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). OTEL_SDK_DISABLED=true turns it off whatever else is set.
 * The OTLP exporter reads its endpoint, headers, timeout and compression from the environment
 * itself; OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL chooses http/protobuf (the default) or http/json
 * (gRPC is not included). OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG choose the sampler
 * (default parentbased_always_on). Off, trace ids are still made and logged, just not exported.
 */
export function readTracingConfig(env: NodeJS.ProcessEnv): TracingSettings {
  if (boolSetting(env, 'OTEL_SDK_DISABLED', false)) return {};
  const hasEndpoint = Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const named = listSetting(env, 'OTEL_TRACES_EXPORTER', EXPORTERS);
  const chosen = env.OTEL_TRACES_EXPORTER ? named.filter((e) => e !== 'none') : hasEndpoint ? ['otlp' as const] : [];
  if (chosen.length === 0) return {};
  const protocolVariable = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  if (env[protocolVariable] === 'grpc') throw new ConfigError(`${protocolVariable}=grpc is not supported: use http/protobuf (port 4318) or http/json`);
  const protocol = choiceSetting(env, protocolVariable, PROTOCOLS, 'http/protobuf');
  const exports: TraceExport[] = chosen.map((kind) => (kind === 'otlp' ? { kind, protocol } : { kind }));
  return { exports, sampler: readSampler(env) };
}

function readSampler(env: NodeJS.ProcessEnv): SamplerSpec {
  const name = choiceSetting(env, 'OTEL_TRACES_SAMPLER', SAMPLER_NAMES, 'parentbased_always_on');
  if (!name.endsWith('traceidratio')) return { name };
  const raw = env.OTEL_TRACES_SAMPLER_ARG;
  if (raw === undefined || raw === '') return { name, ratio: 1 };
  const ratio = Number(raw);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, not ${JSON.stringify(raw)}`);
  return { name, ratio };
}
