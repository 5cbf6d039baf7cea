import { Type, type Static } from 'typebox';
import type { Redeliverer } from '../messaging/consumer.ts';
import type { DeadLetter, DeadLetterStore } from '../messaging/dead-letters.ts';
import { registerDeadLetterMetrics } from '../metrics.ts';
import type { HttpApp } from './app.ts';
import { BODY_PROBLEMS, COMMON_PROBLEMS, HttpProblem, ProblemSchema } from './problem.ts';
import { requireRole } from './request-context.ts';

/**
 * A dead letter's public id, `<service>-<n>` (`book-12`): unique across the system, so the gateway
 * can route `POST /admin/dead-letters/{id}/replay` by the part before the dash. Service names are
 * lower-case letters and digits, so the dash is unambiguous.
 */
export const DEAD_LETTER_ID_PATTERN = '^[a-z][a-z0-9]*-[1-9][0-9]{0,9}$';

const MAX_STORE_ID = 2_147_483_647;

export function deadLetterId(service: string, id: number): string {
  return `${service}-${id}`;
}

/** The service and the store's number of a public id, or null when it is not one. */
export function parseDeadLetterId(id: string): { service: string; id: number } | null {
  if (!new RegExp(DEAD_LETTER_ID_PATTERN).test(id)) return null;
  const dash = id.lastIndexOf('-');
  const n = Number(id.slice(dash + 1));
  return n <= MAX_STORE_ID ? { service: id.slice(0, dash), id: n } : null;
}

export const DeadLetterSchema = Type.Object({
  id: Type.String({ description: '`<service>-<n>`, unique across the system' }),
  service: Type.String(),
  consumer: Type.String(),
  eventId: Type.String(),
  eventType: Type.String(),
  subject: Type.String(),
  error: Type.String({ description: 'why the consumer gave up (the last error)' }),
  deliveries: Type.Integer({ description: 'deliveries before it was parked' }),
  createdAt: Type.String({ format: 'date-time' }),
  replayedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  envelope: Type.Unknown({ description: 'the event as it arrived (CloudEvents envelope)' }),
});

export type DeadLetterJson = Static<typeof DeadLetterSchema>;

export const DeadLetterPageSchema = Type.Object({
  service: Type.String(),
  items: Type.Array(DeadLetterSchema),
  total: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
});

export const ReplayOutcomeSchema = Type.Object({
  outcome: Type.Union([Type.Literal('handled'), Type.Literal('duplicate'), Type.Literal('ignored')]),
  deadLetter: DeadLetterSchema,
});

export function deadLetterJson(service: string, letter: DeadLetter): DeadLetterJson {
  return {
    id: deadLetterId(service, letter.id),
    service,
    consumer: letter.consumer,
    eventId: letter.eventId,
    eventType: letter.eventType,
    subject: letter.subject,
    error: letter.error,
    deliveries: letter.deliveries,
    createdAt: letter.createdAt.toISOString(),
    replayedAt: letter.replayedAt?.toISOString() ?? null,
    envelope: letter.envelope,
  };
}

export interface DeadLetterRoutesOptions {
  /** The service's name: the prefix of its dead letters' ids. */
  service: string;
  store: DeadLetterStore;
  /** The service's event consumer: a replay goes through its inbox and handlers. */
  consumer: Redeliverer;
  now?: () => Date;
}

const IdParams = Type.Object({ id: Type.String({ pattern: DEAD_LETTER_ID_PATTERN, maxLength: 80 }) }, { additionalProperties: false });

/** The paging of a dead-letter list: one service's here, and the gateway's merged list (which adds `service`). */
export const DEAD_LETTER_LIST_QUERY = {
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
  pending: Type.Optional(Type.Boolean({ description: 'only the letters not replayed yet' })),
};

/**
 * The operator's view of a consuming service's dead letters (staff only):
 * - `GET /admin/dead-letters?limit&offset&pending` newest first;
 * - `GET /admin/dead-letters/{id}` one letter, with its envelope and error;
 * - `POST /admin/dead-letters/{id}/replay` delivers the stored envelope to the consumer again,
 *   through its inbox (so an effect already in place is a `duplicate`, never a double). Handled or
 *   duplicate: the letter is marked replayed. `ignored` (the consumer does not read that type):
 *   answered, left unmarked. Failing again: 409 `REPLAY_FAILED` (422 `DEAD_LETTER_MALFORMED` for an
 *   invalid event) with the new error, and the letter stays as it was: no second letter is parked.
 *   A letter replayed before: 409 `DEAD_LETTER_ALREADY_REPLAYED`.
 *
 * It also adds `bstore_dead_letters{service,state}` to the service's metrics, counted from the
 * store at each scrape.
 *
 * @example
 * await app.register(deadLetterRoutes, { service: 'book', store: new KyselyDeadLetterStore(db), consumer });
 */
export async function deadLetterRoutes(app: HttpApp, options: DeadLetterRoutesOptions): Promise<void> {
  const { service, store, consumer } = options;
  const now = options.now ?? (() => new Date());
  const json = (letter: DeadLetter) => deadLetterJson(service, letter);
  registerDeadLetterMetrics(app.metrics, { service, store, logger: app.log });

  /** The letter a path id names, or 404 (another service's id is unknown here). */
  const find = async (id: string): Promise<DeadLetter> => {
    const parsed = parseDeadLetterId(id);
    const letter = parsed && parsed.service === service ? await store.get(parsed.id) : null;
    if (!letter) throw new HttpProblem(404, 'DEAD_LETTER_NOT_FOUND', `no dead letter ${id} in ${service}`, { extensions: { service, deadLetterId: id } });
    return letter;
  };

  app.get(
    '/admin/dead-letters',
    {
      onRequest: requireRole('staff'),
      schema: {
        querystring: Type.Object(DEAD_LETTER_LIST_QUERY, { additionalProperties: false }),
        response: { 200: DeadLetterPageSchema, 400: ProblemSchema, 403: ProblemSchema, ...COMMON_PROBLEMS },
      },
    },
    async (request) => {
      const { limit, offset, pending } = request.query;
      const page = await store.list({ limit, offset, ...(pending ? { pending } : {}) });
      return { service, items: page.items.map(json), total: page.total, limit, offset };
    },
  );

  app.get(
    '/admin/dead-letters/:id',
    {
      onRequest: requireRole('staff'),
      schema: { params: IdParams, response: { 200: DeadLetterSchema, 400: ProblemSchema, 403: ProblemSchema, 404: ProblemSchema, ...COMMON_PROBLEMS } },
    },
    async (request) => json(await find(request.params.id)),
  );

  app.post(
    '/admin/dead-letters/:id/replay',
    {
      onRequest: requireRole('staff'),
      schema: {
        params: IdParams,
        // A replay takes no body, but one sent is still read (413, 415).
        response: { 200: ReplayOutcomeSchema, 400: ProblemSchema, 403: ProblemSchema, 404: ProblemSchema, 409: ProblemSchema, 422: ProblemSchema, ...COMMON_PROBLEMS, ...BODY_PROBLEMS },
      },
    },
    async (request) => {
      const { id } = request.params;
      const letter = await find(id);
      const already = () =>
        new HttpProblem(409, 'DEAD_LETTER_ALREADY_REPLAYED', `dead letter ${id} was already replayed`, {
          extensions: { service, deadLetterId: id, eventId: letter.eventId },
        });
      if (letter.replayedAt) throw already();

      const result = await consumer.redeliver(letter.envelope);
      if (result.outcome === 'failed') {
        const status = result.malformed ? 422 : 409;
        const code = result.malformed ? 'DEAD_LETTER_MALFORMED' : 'REPLAY_FAILED';
        const what = result.malformed ? 'the event is malformed' : 'the handler failed again';
        throw new HttpProblem(status, code, `replay of dead letter ${id} failed (${what}), it stays parked: ${result.error}`, {
          extensions: { service, deadLetterId: id, eventId: letter.eventId, error: result.error },
        });
      }
      request.log.info({ deadLetterId: id, eventId: letter.eventId, eventType: letter.eventType, outcome: result.outcome }, 'dead letter replayed');
      if (result.outcome === 'ignored') return { outcome: result.outcome, deadLetter: json(letter) };

      // Of two replays racing on one letter, one handles the event and the other finds a duplicate:
      // the one that handled it answers 200 even if the other marked the letter first.
      const marked = await store.markReplayed(letter.id, now());
      if (!marked && result.outcome === 'duplicate') throw already();
      return { outcome: result.outcome, deadLetter: json((await store.get(letter.id)) ?? letter) };
    },
  );
}
