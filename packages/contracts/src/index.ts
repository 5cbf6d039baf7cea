export * from './statuses.ts';
export * from './status-schema.ts';
export * from './correlation.ts';
export * from './envelope.ts';
export * from './events.ts';
export * from './asyncapi.ts';
