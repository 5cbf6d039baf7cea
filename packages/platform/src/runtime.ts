/** `@bstore/platform/runtime`: a service's runtime and periodic tasks, how it describes itself (ServiceModule), its settings. */
export * from './periodic-task.ts';
export * from './service-runtime.ts';
export * from './service-module.ts';
export * from './config/settings.ts';
export * from './config/infrastructure-settings.ts';
