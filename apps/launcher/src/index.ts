export { startEmbedded, DEFAULT_PORTS, type EmbeddedSystem, type EmbeddedOptions, type ServiceName } from './embedded-system.ts';
