import { useTranslation } from 'react-i18next';
import type { Message } from '../context.ts';

/** The messages of the app, in one polite live region: screen readers announce each new one. */
export function Messages({ messages, onDismiss }: { messages: Message[]; onDismiss: (id: number) => void }) {
  const { t, i18n } = useTranslation();
  return (
    <section className="messages" aria-label={t('common.messages')}>
      <div role="status" aria-live="polite" aria-atomic="false">
        {messages.map((m) => (
          <div key={m.id} className={`message message-${m.kind}`}>
            <p>{m.render(t, i18n.language)}</p>
            <button type="button" className="button-quiet" onClick={() => onDismiss(m.id)} aria-label={t('common.dismiss')}>
              ×
            </button>
          </div>
        ))}
      </div>
    </section>
  );
}
