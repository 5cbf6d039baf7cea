import { createContext, useContext, useEffect, useRef } from 'react';
import type { TFunction } from 'i18next';
import type { ApiClient, ReservationPage } from './api.ts';
import type { Session } from './session.ts';
import type { StreamState } from './sse.ts';

export type MessageKind = 'success' | 'error' | 'info';

/** A message is rendered at display time, so that it follows a change of language. */
export interface Message {
  id: number;
  kind: MessageKind;
  render: (t: TFunction, language: string) => string;
}

export type Notify = (kind: MessageKind, render: Message['render']) => void;

/** Pages of reservations pushed by the live stream. */
export class PageFeed {
  readonly #listeners = new Set<(page: ReservationPage) => void>();

  subscribe(listener: (page: ReservationPage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(page: ReservationPage): void {
    for (const listener of this.#listeners) listener(page);
  }
}

export interface AppServices {
  api: ApiClient;
  notify: Notify;
  session: Session;
  feed: PageFeed;
  streamState: StreamState;
  /** Increases each time the stream (re)connects: events may have been missed, reload. */
  streamEpoch: number;
}

export const AppContext = createContext<AppServices | null>(null);

export function useApp(): AppServices {
  const value = useContext(AppContext);
  if (!value) throw new Error('useApp outside AppContext');
  return value;
}

/** Calls `listener` with every page the live stream delivers, while mounted. */
export function usePageEvents(listener: (page: ReservationPage) => void): void {
  const { feed } = useApp();
  const latest = useRef(listener);
  useEffect(() => {
    latest.current = listener;
  });
  useEffect(() => feed.subscribe((page) => latest.current(page)), [feed]);
}
