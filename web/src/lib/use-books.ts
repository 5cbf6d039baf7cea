import { useCallback, useEffect, useRef, useState } from 'react';
import type { ApiClient, Book, Page } from '../api.ts';

export const BOOKS_PAGE_SIZE = 20;

/**
 * The catalogue page for a query and offset; `reload()` fetches it again (the newest answer wins,
 * an older one still in flight is dropped).
 */
export function useBooks(api: ApiClient, q: string, offset: number) {
  const [page, setPage] = useState<Page<Book> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loadedAt, setLoadedAt] = useState<number | null>(null);
  const seq = useRef(0);

  const reload = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const answer = await api.books({ ...(q ? { q } : {}), limit: BOOKS_PAGE_SIZE, offset });
      if (mine !== seq.current) return;
      setPage(answer);
      setError(null);
      setLoadedAt(Date.now());
    } catch (err) {
      if (mine === seq.current) setError(err);
    }
  }, [api, q, offset]);

  useEffect(() => {
    void reload();
  }, [reload]);

  return { page, error, loadedAt, reload };
}
