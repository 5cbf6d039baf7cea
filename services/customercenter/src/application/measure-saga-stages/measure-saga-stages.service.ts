import type { PageEventType, TimelineEntry } from '../../domain/reservation-page.ts';
import type { PageEvent } from '../events.ts';
import type { ReservationPageStore, SagaStage, SagaStageTimings } from '../ports.ts';

/** Each stage: the event that opens it and the one that ends it. */
export const SAGA_STAGES: Readonly<Record<SagaStage, readonly [PageEventType, PageEventType]>> = {
  // Requested until the page became bookReserved.
  reserve: ['ReservationRequested', 'ReservationAccepted'],
  cancel: ['ReservationCancelRequested', 'ReservationCanceled'],
};

function stageOf(type: PageEventType): SagaStage | undefined {
  return (Object.keys(SAGA_STAGES) as SagaStage[]).find((stage) => SAGA_STAGES[stage].includes(type));
}

/** Seconds from the stage's opening event to its ending one, by their event times; undefined until both are in the timeline. */
export function stageDuration(stage: SagaStage, timeline: readonly TimelineEntry[]): number | undefined {
  const [from, to] = SAGA_STAGES[stage];
  const start = timeline.find((entry) => entry.eventType === from);
  const end = timeline.find((entry) => entry.eventType === to);
  if (!start || !end) return undefined;
  // Event times come from different services' clocks: a skew never makes a negative duration.
  return Math.max(0, (end.occurredAt.getTime() - start.occurredAt.getTime()) / 1000);
}

/**
 * Times the saga's stages from the read model: `reserve` (ReservationRequested to
 * ReservationAccepted) and `cancel` (ReservationCancelRequested to ReservationCanceled), by the
 * events' own times. The rest of the lifecycle (the waiting line: ReservationWaitlisted,
 * CopyGranted; the loan: ReservationCheckedOut, ReservationReturned; ReservationExpired) opens and
 * ends no stage: those steps wait for people (a copy coming back, a patron at the desk) for hours
 * or days, they are not the saga's latency, and a stage is observed only for its own two events. `projected` is called once per event newly projected, after its change
 * committed (the consumer's after-commit hook, never for a duplicate): a stage is observed when
 * the second of its two events arrives, whichever order they came in, so once per reservation.
 * (Two replicas projecting a stage's two events at the same instant could both see the pair; the
 * read model has one consumer at a time in practice.)
 */
export class MeasureSagaStages {
  readonly #store: ReservationPageStore;
  readonly #timings: SagaStageTimings;

  constructor(store: ReservationPageStore, timings: SagaStageTimings) {
    this.#store = store;
    this.#timings = timings;
  }

  /**
   * Observes the stage `event` completes, if it completes one; returns that stage. `timeline`: the
   * page's timeline as already read after the event was stored (the live stream's announcement
   * reads it), else it is read here.
   */
  async projected(event: PageEvent, timeline?: readonly TimelineEntry[]): Promise<SagaStage | undefined> {
    const stage = stageOf(event.type);
    if (!stage) return undefined;
    const seconds = stageDuration(stage, timeline ?? (await this.#store.timeline(event.data.reservationId)));
    if (seconds === undefined) return undefined;
    this.#timings.observe(stage, seconds);
    return stage;
  }
}
