import { describe, expect, it } from 'vitest';
import { readSettings } from '@bstore/platform';
import { gatewaySettings } from '../src/module.ts';
import { readServiceConfig } from '../../../apps/launcher/src/service-config.ts';

/** The protections as the gateway's schema reads them. */
function readGatewayProtections(env: Record<string, string>) {
  const s = readSettings(gatewaySettings, env);
  return { rateLimit: { perTokenPerMinute: s.rateLimitPerToken, perIpPerMinute: s.rateLimitPerIp }, corsOrigins: s.corsOrigins };
}

describe('the gateway protections configuration', () => {
  it('defaults to 600 a minute per caller, 1200 per IP and no CORS', () => {
    expect(readGatewayProtections({})).toEqual({ rateLimit: { perTokenPerMinute: 600, perIpPerMinute: 1200 }, corsOrigins: [] });
  });

  it('reads the limits and the origins, and the gateway process gets them', () => {
    const env = { BSTORE_RATE_LIMIT_PER_MINUTE: '30', BSTORE_RATE_LIMIT_IP_PER_MINUTE: '0', BSTORE_CORS_ORIGINS: ' https://app.example.org, http://localhost:5173 ,' };
    const expected = { rateLimit: { perTokenPerMinute: 30, perIpPerMinute: 0 }, corsOrigins: ['https://app.example.org', 'http://localhost:5173'] };
    expect(readGatewayProtections(env)).toEqual(expected);
    // A service process also needs an identity configuration: the demo one here.
    expect(readServiceConfig({ ...env, BSTORE_DEMO_AUTH: 'true' }, 'gateway').settings).toMatchObject({ rateLimitPerToken: 30, rateLimitPerIp: 0, corsOrigins: expected.corsOrigins });
  });

  it('refuses a bad value, naming the variable', () => {
    expect(() => readGatewayProtections({ BSTORE_RATE_LIMIT_PER_MINUTE: '-1' })).toThrow(/BSTORE_RATE_LIMIT_PER_MINUTE/);
    expect(() => readGatewayProtections({ BSTORE_RATE_LIMIT_IP_PER_MINUTE: 'lots' })).toThrow(/BSTORE_RATE_LIMIT_IP_PER_MINUTE/);
    for (const origin of ['https://app.example.org/', 'app.example.org', '*', 'ftp://files.example.org', 'https://app.example.org/path']) {
      expect(() => readGatewayProtections({ BSTORE_CORS_ORIGINS: origin })).toThrow(/BSTORE_CORS_ORIGINS/);
    }
  });
});
