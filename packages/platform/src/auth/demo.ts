import type { JWK } from 'jose';
import type { Role } from './identity.ts';

/*
 * ============================  DEMO ONLY — NOT A SECRET  ============================
 * This key pair and the internal key below are published in the repository on purpose, so that
 * `npm start` works on a laptop with zero configuration. Anyone can sign tokens with them. They
 * are used only when no real identity configuration is given (see docs/security.md), and never by
 * the Kubernetes manifests. Real deployments: `npm run auth -- generate-key`.
 * =====================================================================================
 */
export const DEMO_SIGNING_KEY: JWK = {
  kty: 'OKP',
  crv: 'Ed25519',
  kid: 'bstore-demo-key-NOT-SECRET',
  x: 'oCps_Vk_6QWNGyt9FJoiC6G6l34ylkQXWe_zhwSUaoA',
  d: 'vcPH4Mg76DryDQRfxuegBmx52IvfxJ6dPlT_F4SLpjA',
};

/** DEMO ONLY: the shared key of service-to-service calls when no BSTORE_INTERNAL_KEY is set. */
export const DEMO_INTERNAL_KEY = 'bstore-demo-internal-key-NOT-SECRET-do-not-deploy';

/** The issuer of demo tokens: a real configuration's tokens never carry it. */
export const DEMO_ISSUER = 'bstore-demo';
export const DEFAULT_AUDIENCE = 'bstore-api';

/** Design §10's demo users; each one's password is the user name. */
export const DEMO_USERS: ReadonlyArray<{ username: string; password: string; role: Role }> = [
  { username: 'alice', password: 'alice', role: 'customer' },
  { username: 'bob', password: 'bob', role: 'customer' },
  { username: 'librarian', password: 'librarian', role: 'staff' },
];
