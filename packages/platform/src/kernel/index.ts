// The framework-free part of the platform: what domain and application code may import.
export * from './errors.ts';
export * from './ports.ts';
