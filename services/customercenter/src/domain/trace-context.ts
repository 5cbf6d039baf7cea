/**
 * `version-traceid-parentid-flags`, lowercase hex only: W3C Trace Context says a receiver must
 * not accept uppercase, so neither do we (the id is shown to find a trace, and a tracing backend
 * stores it lowercase; normalising would invent an id no backend has seen).
 */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Version 00 is exactly this long; a later version may append fields after a `-`. */
const VERSION_00_LENGTH = 55;

/**
 * The trace id in a W3C `traceparent` (the CloudEvents distributed-tracing extension of an
 * event), or null when there is none or it is not valid trace context: a timeline entry shows
 * the id so that an operator can go from a reservation to its trace, and a wrong id would send
 * them to somebody else's trace or to nothing.
 *
 * Invalid, as the W3C parsing rules say: not a string; wrong lengths or separators; non-hex or
 * uppercase hex; version `ff`; an all-zero trace id or parent id. Version 00 must be exactly
 * 55 characters; a later version is read from its first 55, followed by nothing or a `-`
 * (fields that version added), so events from a newer producer still show their trace.
 *
 * @example
 * traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'); // '4bf92f3577b34da6a3ce929d0e0e4736'
 * traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01'); // null
 * traceIdOf(undefined);                                                // null
 */
export function traceIdOf(traceparent: unknown): string | null {
  if (typeof traceparent !== 'string' || traceparent.length < VERSION_00_LENGTH) return null;
  const head = traceparent.slice(0, VERSION_00_LENGTH);
  const rest = traceparent.slice(VERSION_00_LENGTH);
  if (!TRACEPARENT.test(head)) return null;
  const [version, traceId, parentId] = [head.slice(0, 2), head.slice(3, 35), head.slice(36, 52)];
  if (version === 'ff') return null;
  if (version === '00' ? rest !== '' : rest !== '' && !rest.startsWith('-')) return null;
  if (isAllZero(traceId) || isAllZero(parentId)) return null;
  return traceId;
}

function isAllZero(hex: string): boolean {
  return /^0+$/.test(hex);
}
