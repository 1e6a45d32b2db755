/** Proves the option parsers accept what the help promises and refuse the rest, naming the flag. */

import { describe, expect, it } from 'vitest';
import { UsageError } from './exit-codes.js';
import {
  DEFAULT_SERVERS,
  parseByteSize,
  parseChoice,
  parseHeaders,
  parseInteger,
  parseRate,
  parseServers,
} from './parse.js';

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('parseInteger', () => {
  it('reads whole numbers with optional _ separators', () => {
    expect(parseInteger('0', '--n')).toBe(0);
    expect(parseInteger(' 42 ', '--n')).toBe(42);
    expect(parseInteger('10_000', '--n')).toBe(10_000);
    expect(parseInteger('-5', '--n', { min: -10 })).toBe(-5);
  });

  it('refuses fractions, words, empty text and values out of range, naming the flag', () => {
    for (const bad of ['1.5', 'ten', '', '1e3', '0x10', '_1']) {
      expect(usageMessage(() => parseInteger(bad, '--count'))).toContain('--count');
    }
    expect(usageMessage(() => parseInteger('0', '--count', { min: 1 }))).toBe(
      '--count: expected an integer >= 1, got "0"',
    );
    expect(usageMessage(() => parseInteger('11', '--nodes', { min: 1, max: 9 }))).toBe(
      '--nodes: expected an integer from 1 to 9, got "11"',
    );
    expect(usageMessage(() => parseInteger('99999999999999999999', '--n'))).toContain('--n');
  });
});

describe('parseByteSize', () => {
  it('reads plain bytes, decimal and binary units in any case', () => {
    expect(parseByteSize('512', '--size')).toBe(512);
    expect(parseByteSize('4k', '--size')).toBe(4000);
    expect(parseByteSize('4kB', '--size')).toBe(4000);
    expect(parseByteSize('4KiB', '--size')).toBe(4096);
    expect(parseByteSize('1.5kib', '--size')).toBe(1536);
    expect(parseByteSize('2MB', '--size')).toBe(2_000_000);
    expect(parseByteSize('1MiB', '--size')).toBe(1_048_576);
    expect(parseByteSize('1 GiB', '--size')).toBe(1024 ** 3);
    expect(parseByteSize('0', '--size')).toBe(0);
  });

  it('refuses unknown units, fractional bytes and sizes out of range', () => {
    for (const bad of ['4 parsecs', '1.5', '-1', 'KiB', '']) {
      expect(usageMessage(() => parseByteSize(bad, '--size'))).toContain('--size');
    }
    expect(usageMessage(() => parseByteSize('2MiB', '--size', { max: 1_048_576 }))).toContain(
      'from 0 to 1048576',
    );
  });
});

describe('parseRate and parseChoice', () => {
  it('accepts positive rates, fractional ones too', () => {
    expect(parseRate('500', '--rate')).toBe(500);
    expect(parseRate('2.5', '--rate')).toBe(2.5);
    for (const bad of ['0', '-1', 'fast', ''])
      expect(usageMessage(() => parseRate(bad, '--rate'))).toContain('--rate');
  });

  it('accepts exactly one of the choices', () => {
    expect(parseChoice('reject', '--overflow', ['reject', 'drop-oldest'])).toBe('reject');
    expect(usageMessage(() => parseChoice('Reject', '--overflow', ['reject', 'drop-oldest']))).toBe(
      '--overflow: expected one of reject, drop-oldest, got "Reject"',
    );
  });
});

describe('parseHeaders', () => {
  it('splits at the first = so values may contain =', () => {
    expect(parseHeaders(['trace=abc', 'query=a=b', 'empty='])).toEqual({
      trace: 'abc',
      query: 'a=b',
      empty: '',
    });
  });

  it('refuses pairs without a key and keys given twice', () => {
    expect(usageMessage(() => parseHeaders(['novalue']))).toContain('expected key=value');
    expect(usageMessage(() => parseHeaders(['=x']))).toContain('expected key=value');
    expect(usageMessage(() => parseHeaders(['a=1', 'a=2']))).toContain('"a" given twice');
  });
});

describe('parseServers', () => {
  it('prefers --servers, then FLOTILLA_SERVERS, then the flotilla dev nodes', () => {
    expect(parseServers('h1:1,h2:2', { FLOTILLA_SERVERS: 'ignored:3' })).toEqual([
      'ws://h1:1/client',
      'ws://h2:2/client',
    ]);
    expect(parseServers(undefined, { FLOTILLA_SERVERS: 'wss://a.example/x  http://b:7' })).toEqual([
      'wss://a.example/x',
      'ws://b:7/client',
    ]);
    expect(parseServers(undefined, {})).toEqual(DEFAULT_SERVERS.split(',').map((url) => `${url}/client`));
    expect(parseServers(undefined, { FLOTILLA_SERVERS: '' })).toHaveLength(3);
  });

  it('refuses an empty list and URLs that are not WebSocket or HTTP', () => {
    expect(usageMessage(() => parseServers(',', {}))).toContain('at least one');
    expect(usageMessage(() => parseServers('ftp://x', {}))).toContain('ws://');
    expect(usageMessage(() => parseServers(undefined, { FLOTILLA_SERVERS: 'ftp://x' }))).toContain(
      'FLOTILLA_SERVERS',
    );
  });
});
