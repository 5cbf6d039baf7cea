/**
 * Server-Sent Events read with fetch() and a ReadableStream: `EventSource` cannot send the
 * Authorization header that GET /reservationPages/stream needs. Reconnects with backoff; a 401 ends
 * the session instead.
 */

export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/**
 * An incremental parser of `text/event-stream` (the WHATWG rules that matter here: `event:`,
 * `data:` (joined by newlines), `id:`, comment lines starting with `:`, a blank line dispatches).
 */
export class SseParser {
  #buffer = '';
  #event = '';
  #data: string[] = [];
  #id: string | undefined;
  readonly #onMessage: (message: SseMessage) => void;
  readonly #onComment: (text: string) => void;

  constructor(onMessage: (message: SseMessage) => void, onComment: (text: string) => void = () => {}) {
    this.#onMessage = onMessage;
    this.#onComment = onComment;
  }

  push(chunk: string): void {
    this.#buffer += chunk;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      // A lone "\r" at the end may be the first half of "\r\n": wait for more.
      if (!match || (match[0] === '\r' && match.index === this.#buffer.length - 1)) return;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length > 0) {
        this.#onMessage({ event: this.#event || 'message', data: this.#data.join('\n'), ...(this.#id !== undefined ? { id: this.#id } : {}) });
      }
      this.#event = '';
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) {
      this.#onComment(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id') this.#id = value;
  }
}

export type StreamState = { kind: 'connecting' } | { kind: 'live' } | { kind: 'waiting'; retryInMs: number } | { kind: 'stopped' };

export interface EventStreamOptions {
  url: string;
  token: () => string | undefined;
  onMessage: (message: SseMessage) => void;
  onState: (state: StreamState) => void;
  /** The server refused the token: stop, the session is over. */
  onUnauthorized: (status: number, body: string) => void;
  /** No byte (heartbeats included) for this long: the connection is dead, reconnect. */
  idleTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Opens the stream and keeps it open until the returned function is called. */
export function openEventStream(options: EventStreamOptions): () => void {
  const idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
  const minBackoff = options.minBackoffMs ?? 1_000;
  const maxBackoff = options.maxBackoffMs ?? 30_000;
  let stopped = false;
  let attempt = 0;
  let controller: AbortController | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  const stop = () => {
    stopped = true;
    controller?.abort();
    if (retryTimer !== undefined) clearTimeout(retryTimer);
    options.onState({ kind: 'stopped' });
  };

  const scheduleRetry = () => {
    if (stopped) return;
    const base = Math.min(maxBackoff, minBackoff * 2 ** attempt);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    attempt += 1;
    options.onState({ kind: 'waiting', retryInMs: delay });
    retryTimer = setTimeout(() => void connect(), delay);
  };

  const connect = async () => {
    if (stopped) return;
    const token = options.token();
    if (!token) {
      stop();
      return;
    }
    options.onState({ kind: 'connecting' });
    controller = new AbortController();
    const current = controller;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => current.abort(), idleTimeoutMs);
    };
    try {
      touch();
      const res = await fetch(options.url, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
        cache: 'no-store',
        credentials: 'omit',
        signal: current.signal,
      });
      if (res.status === 401) {
        const body = await res.text().catch(() => '');
        if (idleTimer !== undefined) clearTimeout(idleTimer);
        stopped = true;
        options.onState({ kind: 'stopped' });
        options.onUnauthorized(res.status, body);
        return;
      }
      if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
      attempt = 0;
      options.onState({ kind: 'live' });
      const parser = new SseParser(options.onMessage);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        touch();
        parser.push(value);
      }
    } catch {
      // Aborted, dropped or refused: reconnect below unless stopped.
    } finally {
      if (idleTimer !== undefined) clearTimeout(idleTimer);
    }
    scheduleRetry();
  };

  void connect();
  return stop;
}
