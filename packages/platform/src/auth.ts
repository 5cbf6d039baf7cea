/** `@bstore/platform/auth`: identities, passwords, tokens, the internal service token, the demo identity, a service's auth. */
export * from './auth/identity.ts';
export * from './auth/passwords.ts';
export * from './auth/tokens.ts';
export * from './auth/internal.ts';
export * from './auth/demo.ts';
export * from './auth/service-auth.ts';
