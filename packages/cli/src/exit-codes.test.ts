/** Proves the exit-code contract: each error code maps to the documented exit code. */

import { ERROR_CODES, FlotillaError } from '@flotilla/shared';
import { describe, expect, it } from 'vitest';
import {
  describeError,
  EXIT,
  ExitError,
  exitCodeFor,
  exitCodeForErrorCode,
  UsageError,
} from './exit-codes.js';

describe('exit codes', () => {
  it('maps the documented codes', () => {
    expect(exitCodeForErrorCode('INVALID_ARGUMENT')).toBe(2);
    expect(exitCodeForErrorCode('UNAVAILABLE')).toBe(3);
    expect(exitCodeForErrorCode('CONNECTION_LOST')).toBe(3);
    expect(exitCodeForErrorCode('QUEUE_NOT_FOUND')).toBe(4);
    expect(exitCodeForErrorCode('UNAUTHORIZED')).toBe(5);
    expect(exitCodeForErrorCode('FORBIDDEN')).toBe(5);
    for (const code of ['QUEUE_EXISTS', 'QUEUE_FULL', 'MESSAGE_TOO_LARGE', 'INTERNAL', 'CLOSED'] as const) {
      expect(exitCodeForErrorCode(code), code).toBe(1);
    }
  });

  it('treats a deadline that passed before anything was sent as unreachable, after sending as failed', () => {
    expect(exitCodeForErrorCode('TIMEOUT', { sent: false })).toBe(3);
    expect(exitCodeForErrorCode('TIMEOUT', { sent: true })).toBe(1);
    expect(exitCodeForErrorCode('TIMEOUT')).toBe(1);
  });

  it('gives every protocol error code an exit code between 1 and 5', () => {
    for (const code of ERROR_CODES) {
      const exit = exitCodeForErrorCode(code);
      expect(exit, code).toBeGreaterThanOrEqual(1);
      expect(exit, code).toBeLessThanOrEqual(5);
    }
  });

  it('maps thrown values: usage errors 2, explained failures their code, anything else 1', () => {
    expect(exitCodeFor(new UsageError('bad'))).toBe(EXIT.usage);
    expect(exitCodeFor(new ExitError(EXIT.notFound))).toBe(4);
    expect(exitCodeFor(new FlotillaError('FORBIDDEN', 'no'))).toBe(5);
    expect(exitCodeFor(new Error('boom'))).toBe(1);
    expect(exitCodeFor('strange')).toBe(1);
  });

  it('describes protocol errors with their code first', () => {
    expect(describeError(new FlotillaError('QUEUE_FULL', 'queue q is full'))).toBe(
      'QUEUE_FULL: queue q is full',
    );
    expect(describeError(new UsageError('--count: bad'))).toBe('--count: bad');
    expect(describeError(42)).toBe('42');
  });
});
