import { describe, expect, it } from 'vitest';
import { formatReport, runChaos } from './chaos/chaos.ts';

/**
 * Scale-out is safe: cluster mode on real servers (PostgreSQL, a private nats-server and
 * redis-server) with three replicas of reservation and of assignment behind one gateway process,
 * which balances over them. Patrons reserve and cancel at once through the gateway; halfway, one
 * reservation replica is killed with SIGKILL and left dead. Then: every invariant I1–I5 holds over
 * the whole history (no oversell, nothing acknowledged lost, effects once, the read model
 * converged), and each event was handled exactly once across the assignment replicas, which
 * shared the work.
 */
describe('three replicas of reservation and assignment behind the gateway', () => {
  it('under load, with one replica killed midway, loses nothing and handles each event once', async () => {
    const report = await runChaos({
      durationMs: 16_000,
      faults: false,
      viaGateway: true,
      reservationReplicas: 3,
      assignmentReplicas: 3,
      killMidway: 'reservation',
      workers: 8,
      customers: 60,
    });
    const table = formatReport(report);
    expect(report.reserves.acknowledged, table).toBeGreaterThan(20);
    expect(report.violations, table).toEqual([]);

    // The killed replica is the last reservation one; the two others lived to the end.
    const reservation = report.replicas.filter((r) => r.service === 'reservation');
    expect(reservation.map((r) => r.killed), table).toEqual([false, false, true]);

    // Each event assignment reads was handled by exactly one of its replicas: the replicas'
    // first-time handlings add up to the inbox's rows, one per event (its primary key).
    const assignment = report.replicas.filter((r) => r.service === 'assignment');
    const handled = assignment.map((r) => r.handled ?? 0);
    expect(handled.reduce((a, b) => a + b, 0), table).toBe(report.inboxRows.assignment);
    // They shared the work: more than one replica handled events (JetStream hands a shared durable
    // consumer's messages to whichever replica pulls).
    expect(handled.filter((n) => n > 0).length, table).toBeGreaterThanOrEqual(2);
    // Every patron's token was accepted by every replica: no refusal was about identity.
    expect([report.statuses['401'] ?? 0, report.statuses['403'] ?? 0], table).toEqual([0, 0]);
  }, 400_000);
});
