import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, isSpanContextValid, propagation, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { detectResources, resourceAttributesEnvDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { SAGA_CORRELATION } from '@bstore/contracts';
import { addLogFields } from './log-context.ts';

/** The standard sampler names (OTEL_TRACES_SAMPLER); `ratio` is OTEL_TRACES_SAMPLER_ARG for the ratio ones. */
export const SAMPLER_NAMES = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

export interface SamplerSpec {
  readonly name: (typeof SAMPLER_NAMES)[number];
  /** From 0 to 1, for `traceidratio` and `parentbased_traceidratio` (default 1). */
  readonly ratio?: number;
}

function samplerOf(spec: SamplerSpec): Sampler {
  const ratio = new TraceIdRatioBasedSampler(spec.ratio ?? 1);
  switch (spec.name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
  }
}

/** Where finished spans go. */
export type TraceExport =
  /** OTLP over HTTP; endpoint, headers, timeout and compression from the standard OTEL_EXPORTER_OTLP_* variables. */
  | { readonly kind: 'otlp'; readonly protocol: 'http/protobuf' | 'http/json' }
  /** Each span printed on stdout (a developer's look at one flow). */
  | { readonly kind: 'console' }
  /** Any exporter (tests give an InMemorySpanExporter); `simple` exports each span as it ends instead of in batches. */
  | { readonly kind: 'exporter'; readonly exporter: SpanExporter; readonly simple?: boolean };

export interface TracingSettings {
  /** Exporters; none (the default): spans are not recorded, but trace ids still propagate and reach the logs. */
  readonly exports?: readonly TraceExport[];
  /** Which traces are recorded when exporting (default `parentbased_always_on`): OTEL_TRACES_SAMPLER's names. */
  readonly sampler?: SamplerSpec;
  /** The version in the `service.version` resource attribute. */
  readonly version?: string;
}

/**
 * One service's tracing: its own tracer provider, so that five services in one process (embedded
 * mode, tests) report as five services, the way each has its own metrics registry.
 *
 * Off by default: without exporters the provider samples nothing, which costs next to nothing, yet
 * every request and event still gets a trace id and span id, propagated over HTTP and in event
 * envelopes and written on log lines, so logs correlate across services even without a tracing
 * backend.
 */
export class ServiceTracing {
  readonly service: string;
  readonly tracer: Tracer;
  /** Whether spans are recorded and exported. */
  readonly exporting: boolean;
  readonly #provider: TracerProvider;

  constructor(service: string, settings: TracingSettings = {}) {
    installTracingGlobals();
    this.service = service;
    const exports = settings.exports ?? [];
    this.exporting = exports.length > 0;
    const processors = exports.map(processorOf);
    // OTEL_RESOURCE_ATTRIBUTES (deployment.environment, k8s.pod.name, ...) with the service's own
    // name: it is the service's, never the process's (embedded mode runs five in one).
    const resource = detectResources({ detectors: [resourceAttributesEnvDetector] }).merge(
      resourceFromAttributes({ [ATTR_SERVICE_NAME]: service, 'service.namespace': 'bstore', ...(settings.version ? { [ATTR_SERVICE_VERSION]: settings.version } : {}) }),
    );
    this.#provider = new TracerProvider({
      resource,
      spanProcessors: processors,
      // Not exporting: ids are made (the SDK gives a non-recording span its own ids), nothing recorded.
      ...(this.exporting ? (settings.sampler ? { sampler: samplerOf(settings.sampler) } : {}) : { sampler: new AlwaysOffSampler() }),
    });
    this.tracer = this.#provider.getTracer('@bstore/platform');
  }

  /** The provider, for instrumentations given it (`@fastify/otel` in createHttpApp). */
  get provider(): TracerProvider {
    return this.#provider;
  }

  /** Exports what is buffered and stops; called last when the service stops. */
  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }
}

function processorOf(spec: TraceExport): SpanProcessor {
  switch (spec.kind) {
    case 'otlp':
      return new BatchSpanProcessor({ exporter: spec.protocol === 'http/json' ? new OtlpJsonExporter() : new OtlpProtobufExporter() });
    case 'console':
      return new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() });
    case 'exporter':
      return spec.simple ? new SimpleSpanProcessor({ exporter: spec.exporter }) : new BatchSpanProcessor({ exporter: spec.exporter });
  }
}

let globalsInstalled = false;

/**
 * The process-wide parts, once: the async-local context (so a span started in a request is the
 * parent of what that request does) and the W3C trace-context propagator (the `traceparent`
 * header, and the envelope field of the same name).
 */
function installTracingGlobals(): void {
  if (globalsInstalled) return;
  globalsInstalled = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

/** The W3C `traceparent` of a context (default the active one), or undefined when it has no valid span. */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The context a `traceparent` names, to start a span as its child (the root context when absent or invalid). */
export function contextOfTraceparent(traceparent: unknown): Context {
  return typeof traceparent === 'string' ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
}

/** Adds the active trace context to outgoing HTTP headers (`traceparent`, `tracestate`), replacing any there. */
export function withTraceHeaders<T extends Record<string, unknown>>(headers: T, ctx: Context = context.active()): T & Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  const { traceparent: _tp, tracestate: _ts, ...rest } = headers;
  return { ...(rest as T), ...carrier };
}

/** `trace_id` and `span_id` of the active span, for log lines (OpenTelemetry's field names for logs). */
export function activeTraceFields(): { trace_id: string; span_id: string } | undefined {
  const span = trace.getSpan(context.active());
  if (!span) return undefined;
  const ids = span.spanContext();
  return isSpanContextValid(ids) ? { trace_id: ids.traceId, span_id: ids.spanId } : undefined;
}

/**
 * The tracer of a part built without its service's tracing (a test's consumer, say): the global
 * one, which records nothing here (no global provider is ever registered) but carries a parent's
 * trace context on.
 */
export function untracedTracer(): Tracer {
  return trace.getTracer('@bstore/platform');
}

/**
 * Says which saga the current request or event is about (its correlation id, the contracts'
 * `SAGA_CORRELATION`): on its span (to find the trace by it) and on its log lines from here on.
 */
export function tagCorrelation(id: number): void {
  trace.getSpan(context.active())?.setAttribute(SAGA_CORRELATION.spanAttribute, id);
  addLogFields({ [SAGA_CORRELATION.field]: id });
}

/** Tags the current span and log lines with the correlation id an event's data carries, if it carries one. */
export function tagEventCorrelation(data: unknown): void {
  const id = (data as Record<string, unknown> | null | undefined)?.[SAGA_CORRELATION.field];
  if (typeof id === 'number') tagCorrelation(id);
}

/**
 * Runs `fn` in a new span, ending it when `fn` settles; an exception marks the span as an error
 * and is rethrown.
 *
 * @example
 * await inSpan(tracer, 'PUT /books/{bookId}/holds/{reservationId}', { kind: SpanKind.CLIENT }, (span) => fetch(...));
 */
export function inSpan<T>(tracer: Tracer, name: string, options: { kind: SpanKind; attributes?: Attributes; parent?: Context }, fn: (span: Span) => Promise<T>): Promise<T> {
  const parent = options.parent ?? context.active();
  return tracer.startActiveSpan(name, { kind: options.kind, ...(options.attributes ? { attributes: options.attributes } : {}) }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      markSpanFailed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Marks a span as failed with the error's message (and type, as `error.type`). */
export function markSpanFailed(span: Span, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: message.slice(0, 500) });
  span.setAttribute('error.type', err instanceof Error ? err.name : 'Error');
}

export { SpanKind };
export type { Span, Tracer };

/** The service's tracing, or one that only makes ids (tracing off). */
export function tracingOf(deps: { tracing?: ServiceTracing | undefined }, service: string): ServiceTracing {
  return deps.tracing ?? new ServiceTracing(service);
}
