import { useEffect, useRef, useState } from 'react';

/** The path of the location's hash (`#/staff/books?x` → `/staff/books`). */
export function currentRoute(): string {
  const hash = window.location.hash.replace(/^#/, '');
  const path = hash.split('?')[0] ?? '';
  return path.startsWith('/') ? path : '/';
}

export function useHashRoute(): string {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function navigate(route: string): void {
  window.location.hash = `#${route}`;
}

/** Whether the page is visible (not a background tab). */
export function usePageVisible(): boolean {
  const [visible, setVisible] = useState(() => document.visibilityState === 'visible');
  useEffect(() => {
    const onChange = () => setVisible(document.visibilityState === 'visible');
    document.addEventListener('visibilitychange', onChange);
    return () => document.removeEventListener('visibilitychange', onChange);
  }, []);
  return visible;
}

/** Calls `tick` every `intervalMs` while the page is visible, and once when it becomes visible again. */
export function useVisibleInterval(tick: () => void, intervalMs: number): void {
  const visible = usePageVisible();
  const latest = useRef(tick);
  useEffect(() => {
    latest.current = tick;
  });
  const wasVisible = useRef(visible);
  useEffect(() => {
    if (visible && !wasVisible.current) latest.current();
    wasVisible.current = visible;
    if (!visible) return;
    const id = setInterval(() => latest.current(), intervalMs);
    return () => clearInterval(id);
  }, [visible, intervalMs]);
}

export function useDebounced<T>(value: T, delayMs: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setDebounced(value), delayMs);
    return () => clearTimeout(id);
  }, [value, delayMs]);
  return debounced;
}

/** The current time in milliseconds, renewed every `intervalMs` (for "overdue" and "today" to follow the clock). */
export function useNow(intervalMs = 30_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(id);
  }, [intervalMs]);
  return now;
}

/** The query of the location's hash (`#/staff/assignments?reservationId=3`). */
export function hashQuery(): URLSearchParams {
  const hash = window.location.hash;
  const mark = hash.indexOf('?');
  return new URLSearchParams(mark < 0 ? '' : hash.slice(mark + 1));
}
