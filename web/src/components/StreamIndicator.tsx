import { useTranslation } from 'react-i18next';
import type { StreamState } from '../sse.ts';

export function StreamIndicator({ state }: { state: StreamState }) {
  const { t } = useTranslation();
  const text =
    state.kind === 'live'
      ? t('stream.live')
      : state.kind === 'connecting'
        ? t('stream.connecting')
        : state.kind === 'waiting'
          ? t('stream.reconnecting', { seconds: Math.ceil(state.retryInMs / 1000) })
          : t('stream.stopped');
  return (
    <p className={`stream stream-${state.kind}`}>
      <span className="stream-dot" aria-hidden="true" />
      {t('stream.label')}: {text}
    </p>
  );
}
