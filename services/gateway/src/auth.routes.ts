import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { ServiceAuth } from '@bstore/platform/auth';
import { HttpProblem, ProblemSchema, type HttpApp } from '@bstore/platform/http';

export interface AuthRoutesOptions {
  auth: ServiceAuth;
  /** Sign-in attempts per minute per client address and user name (guessing passwords); 0 = no limit. */
  loginAttemptsPerMinute: number;
}

const TokenRequest = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: 256 }),
  },
  { additionalProperties: false },
);

const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'seconds until the token expires' }),
});

/**
 * Sign-in: `POST /auth/token {username, password}` answers a short-lived bearer token (design
 * §10), and `/.well-known/jwks.json` publishes the public keys the services verify it with. With an
 * external identity provider (only a JWKS URL configured) tokens come from the provider, and
 * `POST /auth/token` answers 404 saying so.
 */
export async function authRoutes(app: HttpApp, options: AuthRoutesOptions): Promise<void> {
  const tokens = options.auth.tokens;
  const loginLimit =
    options.loginAttemptsPerMinute > 0 && 'createRateLimit' in app
      ? app.createRateLimit({
          max: options.loginAttemptsPerMinute,
          timeWindow: 60_000,
          // Called by the handler, after the body was validated: the user name is a string there.
          keyGenerator: (request: FastifyRequest) => {
            const username = (request.body as { username?: unknown } | undefined)?.username;
            return `${request.ip}|${typeof username === 'string' ? username.toLowerCase() : ''}`;
          },
        })
      : undefined;

  app.post(
    '/auth/token',
    {
      schema: {
        summary: 'Sign in: exchange a user name and password for a bearer token',
        tags: ['auth'],
        body: TokenRequest,
        response: { 200: TokenResponse, 400: ProblemSchema, 401: ProblemSchema, 404: ProblemSchema, 429: ProblemSchema },
      },
    },
    async (request, reply) => {
      if (!tokens) {
        throw new HttpProblem(404, 'TOKENS_FROM_IDENTITY_PROVIDER', 'this deployment takes tokens from its identity provider (OIDC); bstore issues none');
      }
      if (loginLimit) {
        const result = await loginLimit(request);
        if (!result.isAllowed && result.isExceeded) {
          const retryAfter = String(Math.max(1, result.ttlInSeconds));
          throw new HttpProblem(429, 'RATE_LIMITED', `too many sign-in attempts for this user from this address; retry in ${retryAfter} s`, {
            extensions: { limit: result.max, scope: 'login' },
            headers: { 'retry-after': retryAfter },
          });
        }
      }
      const identity = await tokens.users.authenticate(request.body.username, request.body.password);
      if (!identity) {
        request.log.info({ username: request.body.username }, 'sign-in refused');
        throw new HttpProblem(401, 'INVALID_CREDENTIALS', 'the user name or the password is wrong', { headers: { 'www-authenticate': 'Bearer realm="bstore"' } });
      }
      // A token is a credential: never cached by a browser or a proxy (RFC 6749 §5.1).
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(await tokens.issuer.issue(identity));
    },
  );

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        summary: 'The public keys that verify the tokens this gateway issues',
        tags: ['auth'],
        response: { 200: Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) }), 404: ProblemSchema },
      },
    },
    async (_request, reply) => {
      if (!tokens) throw new HttpProblem(404, 'TOKENS_FROM_IDENTITY_PROVIDER', 'this deployment takes tokens from its identity provider; its keys are published there');
      return reply.header('cache-control', 'public, max-age=300').send(tokens.jwks);
    },
  );
}
