import { describe, expect, it } from 'vitest';
import { as } from './support/auth.ts';
import { eventually } from './support/harness.ts';
import { startTestSystem } from './support/system.ts';

describe('shutdown', () => {
  it('stops cleanly while a patron watches the live stream through the gateway', async () => {
    const system = await startTestSystem({ seedDemoData: false });
    const controller = new AbortController();
    const res = await fetch(`${system.urls.gateway}/reservationPages/stream`, { headers: await as('alice'), signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body?.getReader();
    const first = await reader?.read();
    expect(new TextDecoder().decode(first?.value)).toContain(':');
    // Without ending the stream, closing the gateway would wait for it forever (the test's timeout).
    await system.stop();
    const ended = await eventually('the stream to end', async () => {
      try {
        const next = await reader?.read();
        return next?.done ? true : undefined;
      } catch {
        return true;
      }
    });
    expect(ended).toBe(true);
    controller.abort();
  });
});
