import { parseArgs } from 'node:util';
import { wholeOption } from '../test/support/cli-options.ts';
import { measureHoldFloor, measurePublishFloor } from './floor.ts';
import { floorsTable } from './report.ts';

/**
 * `npm run bench:floor [-- --concurrency 16 --duration 10]`: the floors of the benchmark on this
 * machine, now: the book-hold transaction on PostgreSQL (one hot book, then 10,000 books) and
 * JetStream publish-with-ack, each at the same client concurrency. bench/README.md says how to
 * read them. Reads POSTGRES_URL (default the machine's server) and NATS_URL.
 */
const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '10' },
  },
});
const concurrency = wholeOption('concurrency', values.concurrency, 1, 256);
const durationMs = wholeOption('duration', values.duration, 1, 600) * 1000;
const postgresUrl = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const floors = {
  holdHot: await measureHoldFloor({ postgresUrl, concurrency, durationMs, books: 1 }),
  holdSpread: await measureHoldFloor({ postgresUrl, concurrency, durationMs, books: 10_000 }),
  publish: await measurePublishFloor({ natsUrl, concurrency, durationMs }),
};
process.stdout.write(`floors on this machine, ${concurrency} clients each, ${durationMs / 1000} s, ${new Date().toISOString()}\n${floorsTable(floors)}\n`);
process.stdout.write(
  `floor_holds_per_s=${floors.holdHot.perSecond.toFixed(0)} floor_holds_spread_per_s=${floors.holdSpread.perSecond.toFixed(0)} floor_publish_per_s=${floors.publish.perSecond.toFixed(0)}\n`,
);
