/** Proves token authentication and per-queue-pattern permissions, and that bad token files are refused. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthConfigError, TokenAuthenticator } from './tokens.js';

const auth = TokenAuthenticator.fromJson({
  tokens: [
    {
      name: 'api',
      token: 'api-token-123',
      permissions: [
        { queues: 'emails*', actions: ['publish'] },
        { queues: 'jobs.a.b', actions: ['consume'] },
      ],
    },
    {
      name: 'ops',
      token: `sha256:${createHash('sha256').update('ops-token-456').digest('hex')}`,
      permissions: [{ queues: '*', actions: ['publish', 'consume', 'manage'] }],
    },
  ],
});

describe('TokenAuthenticator', () => {
  it('authenticates known tokens only', () => {
    expect(auth.authenticate('api-token-123')?.name).toBe('api');
    expect(auth.authenticate('ops-token-456')?.name).toBe('ops');
    expect(auth.authenticate('api-token-12')).toBeNull();
    expect(auth.authenticate('')).toBeNull();
    expect(auth.authenticate(undefined)).toBeNull();
  });

  it('grants actions per queue pattern', () => {
    const api = auth.authenticate('api-token-123')!;
    expect(api.can('publish', 'emails')).toBe(true);
    expect(api.can('publish', 'emails.dlq')).toBe(true);
    expect(api.can('consume', 'emails')).toBe(false);
    expect(api.can('publish', 'xemails')).toBe(false);
    expect(api.can('consume', 'jobs.a.b')).toBe(true);
    expect(api.can('consume', 'jobsXaXb')).toBe(false);
    expect(api.can('manage', 'emails')).toBe(false);
    expect(auth.authenticate('ops-token-456')!.can('manage', 'anything')).toBe(true);
  });

  it.each([
    [{}, /tokens/],
    [{ tokens: [{ name: 'x', token: 'short', permissions: [] }] }, /8 characters/],
    [
      { tokens: [{ name: 'x', token: 'long-enough', permissions: [{ queues: '*', actions: ['fly'] }] }] },
      /actions/,
    ],
    [{ tokens: [{ name: 'x', token: 'sha256:abcd', permissions: [] }] }, /sha256/],
  ])('rejects a bad file %#', (raw, message) => {
    expect(() => TokenAuthenticator.fromJson(raw)).toThrow(AuthConfigError);
    expect(() => TokenAuthenticator.fromJson(raw)).toThrow(message);
  });
});
