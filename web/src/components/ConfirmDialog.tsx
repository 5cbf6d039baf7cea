import { useEffect, useId, useRef } from 'react';

interface ConfirmDialogProps {
  open: boolean;
  title: string;
  body: string;
  confirmLabel: string;
  cancelLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  /** Where focus goes when the opener is gone or disabled after closing (default: the main content). */
  fallbackFocus?: () => HTMLElement | null;
}

/**
 * A modal <dialog>: focus goes to the safe choice when it opens and back to what had it when it
 * closes; Escape cancels.
 */
export function ConfirmDialog({ open, title, body, confirmLabel, cancelLabel, onConfirm, onCancel, fallbackFocus }: ConfirmDialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const returnFocus = useRef<Element | null>(null);
  const latestFallback = useRef(fallbackFocus);
  latestFallback.current = fallbackFocus;
  const titleId = useId();
  const bodyId = useId();

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      returnFocus.current = document.activeElement;
      dialog.showModal();
      cancelRef.current?.focus();
    } else if (!open && dialog.open) {
      dialog.close();
    }
    if (!open && returnFocus.current instanceof HTMLElement) {
      const target = returnFocus.current;
      returnFocus.current = null;
      // The opener may be gone or disabled (a request in flight): then focus the fallback.
      requestAnimationFrame(() => {
        const usable = target.isConnected && !(target instanceof HTMLButtonElement && target.disabled);
        (usable ? target : (latestFallback.current?.() ?? document.getElementById('main-content')))?.focus();
      });
    }
  }, [open]);

  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      aria-describedby={bodyId}
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <h2 id={titleId}>{title}</h2>
      <p id={bodyId}>{body}</p>
      <div className="dialog-actions">
        <button type="button" ref={cancelRef} onClick={onCancel}>
          {cancelLabel}
        </button>
        <button type="button" className="button-danger" onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
