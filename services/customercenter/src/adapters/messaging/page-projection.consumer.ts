import { parseEvent, type EventEnvelope } from '@bstore/contracts';
import { EventConsumer, type EventConsumerOptions, type HandleResult, type Logger } from '@bstore/platform';
import { isPageEvent, type PageEvent } from '../../application/events.ts';
import type { CustomerCenterTables } from '../db/schema.ts';

export interface PageProjectionConsumerOptions extends EventConsumerOptions<CustomerCenterTables> {
  /** Called once the change of a handled event committed; never for duplicates or failures. */
  onCommitted: (event: PageEvent) => Promise<unknown>;
}

/**
 * The EventConsumer of the read model, plus a hook after each committed change (the live stream
 * must not show a change that may still roll back). It overrides `handle` because the bus
 * delivers through it and the platform's afterCommit callback does not say which event committed.
 */
export class PageProjectionConsumer extends EventConsumer<CustomerCenterTables> {
  readonly #onCommitted: (event: PageEvent) => Promise<unknown>;
  readonly #log: Logger;

  constructor(options: PageProjectionConsumerOptions) {
    const { onCommitted, ...consumerOptions } = options;
    super(consumerOptions);
    this.#onCommitted = onCommitted;
    this.#log = options.logger.child({ consumer: options.name });
  }

  override async handle(envelope: EventEnvelope, deliveryCount = 1, subject = ''): Promise<HandleResult> {
    const result = await super.handle(envelope, deliveryCount, subject);
    if (result !== 'handled') return result;
    const event = parseEvent(envelope);
    if (!isPageEvent(event)) return result;
    try {
      await this.#onCommitted(event);
    } catch (err) {
      // The change is committed and stays; only its live notification is lost.
      this.#log.warn({ err, eventId: envelope.id, type: envelope.type }, 'live page update failed');
    }
    return result;
  }
}
