/**
 * Proves option handling: server URLs are normalised (scheme, `/client` path), duplicates are
 * dropped, defaults are filled in, and bad values fail with INVALID_ARGUMENT naming the option.
 */

import { describe, expect, it } from 'vitest';
import { FlotillaError } from './index.js';
import { DEFAULT_OPTIONS, normalizeServerUrl, resolveOptions } from './options.js';

describe('normalizeServerUrl', () => {
  it.each([
    ['ws://127.0.0.1:7401', 'ws://127.0.0.1:7401/client'],
    ['ws://127.0.0.1:7401/', 'ws://127.0.0.1:7401/client'],
    ['127.0.0.1:7401', 'ws://127.0.0.1:7401/client'],
    ['localhost:7402', 'ws://localhost:7402/client'],
    ['http://n1:7400', 'ws://n1:7400/client'],
    ['https://broker.example.com', 'wss://broker.example.com/client'],
    ['wss://broker.example.com/custom/path', 'wss://broker.example.com/custom/path'],
    ['ws://n2:7400/client', 'ws://n2:7400/client'],
  ])('%s → %s', (input, expected) => {
    expect(normalizeServerUrl(input)).toBe(expected);
  });

  it('refuses what is not a WebSocket URL', () => {
    expect(() => normalizeServerUrl('ftp://x')).toThrow(FlotillaError);
    expect(() => normalizeServerUrl('ws://')).toThrow(/not a URL/);
  });
});

describe('resolveOptions', () => {
  it('fills in defaults and removes duplicate servers', () => {
    const options = resolveOptions({ servers: ['ws://a:1', 'a:1', 'ws://b:2'] });
    expect(options.servers).toEqual(['ws://a:1/client', 'ws://b:2/client']);
    expect(options.requestTimeoutMs).toBe(DEFAULT_OPTIONS.requestTimeoutMs);
    expect(options.maxUnconfirmedMessages).toBe(1_000);
    expect(options.maxUnconfirmedBytes).toBe(16 * 1024 * 1024);
    expect(options.maxBatchMessages).toBe(100);
    expect(options.reconnectDelayMs).toEqual({ initialMs: 100, maxMs: 2_000 });
  });

  it('accepts a single server string', () => {
    expect(resolveOptions({ servers: 'n1:7400' }).servers).toEqual(['ws://n1:7400/client']);
  });

  it('names the bad option', () => {
    const field = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return (error as FlotillaError).field;
      }
      return undefined;
    };
    expect(field(() => resolveOptions({ servers: [] }))).toBe('servers');
    expect(field(() => resolveOptions({ servers: ['a:1', 'mailto:x'] }))).toBe('servers[1]');
    expect(field(() => resolveOptions({ servers: ['a:1'], maxUnconfirmedMessages: 0 }))).toBe(
      'maxUnconfirmedMessages',
    );
    expect(field(() => resolveOptions({ servers: ['a:1'], reconnectDelayMs: { initialMs: 1.5 } }))).toBe(
      'reconnectDelayMs.initialMs',
    );
  });
});
