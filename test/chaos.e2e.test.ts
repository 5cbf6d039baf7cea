import { describe, expect, it } from 'vitest';
import { formatReport, runChaos, type ChaosReport } from './chaos/chaos.ts';

/** Every new path of the hold's life was taken: a line joined, a copy granted, lent, returned, expired. */
function expectWholeLife(report: ChaosReport, table: string): void {
  const { waitlisted, checkOuts, checkIns, recorded } = report.lifecycle;
  const seen = { waitlisted, checkedOutAcknowledged: checkOuts.acknowledged, checkedInAcknowledged: checkIns.acknowledged, ...recorded };
  // Reservations still waiting or on loan at the end may be none.
  const untaken = Object.entries(seen).filter(([path, n]) => n === 0 && path !== 'stillWaiting' && path !== 'onLoan');
  expect(untaken.map(([path]) => path), table).toEqual([]);
}

describe('chaos (short run; `npm run test:chaos -- --duration 300` for a long one)', () => {
  it('with faults injected, every invariant holds over the whole history', async () => {
    const report = await runChaos({ durationMs: 30_000, faults: true, faultEveryMs: 1500 });
    const table = formatReport(report);
    expect(report.operations, table).toBeGreaterThan(50);
    expect(report.reserves.acknowledged, table).toBeGreaterThan(10);
    // The schedule cycles through the kinds of fault, so a run this long injects each at least once.
    for (const kind of ['kill', 'natsRestart', 'freezeBook', 'freezeReservation', 'duplicates'] as const) expect(report.faults[kind], table).toBeGreaterThanOrEqual(1);
    // Every patron's token was accepted by every replica, restarted ones included: no refusal was about identity.
    expect([report.statuses['401'] ?? 0, report.statuses['403'] ?? 0], table).toEqual([0, 0]);
    // The holds were read while the load ran, so I8 held at every sample, not only at the end.
    expect(report.holdsSampled.samples, table).toBeGreaterThan(10);
    expect(report.holdsSampled.bookSnapshots, table).toBeGreaterThan(10);
    expectWholeLife(report, table);
    expect(report.unexpected, table).toMatchObject({ count: 0 });
    expect(report.violations, table).toEqual([]);
  }, 400_000);

  it('the same load without faults answers no 5xx, and every invariant holds', async () => {
    const report = await runChaos({ durationMs: 10_000, faults: false });
    const table = formatReport(report);
    expect(report.reserves.acknowledged, table).toBeGreaterThan(10);
    expect(report.serverErrors, table).toBe(0);
    expect([report.statuses['401'] ?? 0, report.statuses['403'] ?? 0], table).toEqual([0, 0]);
    expectWholeLife(report, table);
    expect(report.unexpected, table).toMatchObject({ count: 0 });
    expect(report.violations, table).toEqual([]);
  }, 300_000);
});
