import { describe, expect, it } from 'vitest';
import { readTracingConfig } from '../src/tracing-config.ts';
import { readServiceConfig } from '../src/service-config.ts';

/* Tracing from the standard OTEL_* variables: off unless asked for, and a bad value stops the start. */

describe('readTracingConfig', () => {
  it('is off with nothing set: no exporter (ids only)', () => {
    expect(readTracingConfig({})).toEqual({});
  });

  it('exports over OTLP, protobuf by default, once an OTLP endpoint is set', () => {
    for (const variable of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) {
      expect(readTracingConfig({ [variable]: 'http://collector:4318' })).toEqual({
        exports: [{ kind: 'otlp', protocol: 'http/protobuf' }],
        sampler: { name: 'parentbased_always_on' },
      });
    }
  });

  it('takes the protocol, the traces one first', () => {
    expect(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).exports).toEqual([{ kind: 'otlp', protocol: 'http/json' }]);
    expect(
      readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).exports,
    ).toEqual([{ kind: 'otlp', protocol: 'http/protobuf' }]);
  });

  it('follows OTEL_TRACES_EXPORTER when set: console, otlp, both, or none', () => {
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: 'console' }).exports).toEqual([{ kind: 'console' }]);
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: 'otlp,console' }).exports).toEqual([{ kind: 'otlp', protocol: 'http/protobuf' }, { kind: 'console' }]);
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({});
  });

  it('is off with OTEL_SDK_DISABLED=true whatever else is set', () => {
    expect(readTracingConfig({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({});
  });

  it('reads the sampler and its ratio', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp' };
    expect(readTracingConfig({ ...on, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).sampler).toEqual({ name: 'parentbased_traceidratio', ratio: 0.25 });
    expect(readTracingConfig({ ...on, OTEL_TRACES_SAMPLER: 'traceidratio' }).sampler).toEqual({ name: 'traceidratio', ratio: 1 });
    expect(readTracingConfig({ ...on, OTEL_TRACES_SAMPLER: 'always_off' }).sampler).toEqual({ name: 'always_off' });
  });

  it('refuses what it cannot do, naming the variable', () => {
    const on = { OTEL_TRACES_EXPORTER: 'otlp' };
    expect(() => readTracingConfig({ OTEL_TRACES_EXPORTER: 'jaeger' })).toThrow(/OTEL_TRACES_EXPORTER: unknown jaeger/);
    expect(() => readTracingConfig({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported/);
    expect(() => readTracingConfig({ ...on, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift' })).toThrow(/OTEL_EXPORTER_OTLP_TRACES_PROTOCOL must be one of/);
    expect(() => readTracingConfig({ ...on, OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER must be one of/);
    expect(() => readTracingConfig({ ...on, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' })).toThrow(/OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1/);
    expect(() => readTracingConfig({ OTEL_SDK_DISABLED: 'maybe' })).toThrow(/OTEL_SDK_DISABLED must be true or false/);
  });

  it('is part of every service process configuration', () => {
    const config = readServiceConfig({ BSTORE_DEMO_AUTH: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, 'gateway');
    expect(config.tracing.exports).toEqual([{ kind: 'otlp', protocol: 'http/protobuf' }]);
  });
});
