import { randomBytes, randomUUID, generateKeyPairSync } from 'node:crypto';
import { hashPassword, publicJwk } from '@bstore/platform';

/**
 * `npm run auth -- <command>`: the operator's identity chores (docs/security.md).
 *   generate-key            a new Ed25519 signing key: the private JWK (BSTORE_AUTH_SIGNING_KEY,
 *                           gateway only) and the JWKS to add to BSTORE_AUTH_PUBLIC_KEYS
 *   generate-internal-key   a value for BSTORE_INTERNAL_KEY (book and reservation)
 *   hash-password           reads a password on stdin, prints the hash for a users file
 */
const command = process.argv[2];

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

switch (command) {
  case 'generate-key': {
    const { privateKey } = generateKeyPairSync('ed25519');
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `bstore-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}` };
    process.stdout.write(`# BSTORE_AUTH_SIGNING_KEY (secret: the gateway's only)\n${JSON.stringify(jwk)}\n`);
    process.stdout.write(`# add this key to BSTORE_AUTH_PUBLIC_KEYS (every service), keeping the old one until its tokens expire\n${JSON.stringify({ keys: [publicJwk(jwk)] })}\n`);
    break;
  }
  case 'generate-internal-key':
    process.stdout.write(`${randomBytes(32).toString('base64url')}\n`);
    break;
  case 'hash-password': {
    const password = await readStdin();
    if (password.length === 0) {
      process.stderr.write('give the password on stdin, e.g.: read -rs PW && printf %s "$PW" | npm run -s auth -- hash-password\n');
      process.exit(2);
    }
    process.stdout.write(`${await hashPassword(password)}\n`);
    break;
  }
  default:
    process.stderr.write('usage: npm run auth -- generate-key | generate-internal-key | hash-password\n');
    process.exit(2);
}
