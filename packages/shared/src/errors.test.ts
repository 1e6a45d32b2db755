/**
 * Proves the error contract: every code has retry/maybe-applied semantics, TIMEOUT stays distinct
 * from definite failures, and FlotillaError carries code, details and cause through instanceof.
 * Also covers body formats, which the SDK uses to turn payloads into bytes and back.
 */

import { describe, expect, it } from 'vitest';
import { decodeBody, encodeBody } from './body.js';
import {
  ERROR_CODES,
  ERROR_INFO,
  FlotillaError,
  isErrorCode,
  isFlotillaError,
  isMaybeApplied,
  isRetryable,
} from './errors.js';
import { BodyFormat } from './frames.js';

describe('error codes', () => {
  it('includes the contract codes and describes every one', () => {
    for (const code of [
      'NOT_LEADER',
      'QUEUE_NOT_FOUND',
      'QUEUE_EXISTS',
      'QUEUE_FULL',
      'INVALID_ARGUMENT',
      'UNAUTHORIZED',
      'FORBIDDEN',
      'FRAME_TOO_LARGE',
      'MESSAGE_TOO_LARGE',
      'OVERLOADED',
      'TIMEOUT',
      'UNAVAILABLE',
      'UNKNOWN_OP',
      'PROTOCOL_ERROR',
      'LEASE_EXPIRED',
      'INTERNAL',
    ]) {
      expect(isErrorCode(code), code).toBe(true);
    }
    expect(Object.keys(ERROR_INFO).sort()).toEqual([...ERROR_CODES].sort());
    expect(isErrorCode('NOPE')).toBe(false);
  });

  it('keeps "outcome unknown" apart from definite failures', () => {
    expect(isMaybeApplied('TIMEOUT')).toBe(true);
    expect(isMaybeApplied('CONNECTION_LOST')).toBe(true);
    expect(isMaybeApplied('CANCELLED')).toBe(true);
    expect(isRetryable('CANCELLED')).toBe(false);
    for (const code of [
      'NOT_LEADER',
      'UNAVAILABLE',
      'OVERLOADED',
      'QUEUE_FULL',
      'INVALID_ARGUMENT',
    ] as const) {
      expect(isMaybeApplied(code), code).toBe(false);
    }
    for (const code of ['NOT_LEADER', 'UNAVAILABLE', 'OVERLOADED', 'TIMEOUT', 'QUEUE_FULL'] as const) {
      expect(isRetryable(code), code).toBe(true);
    }
    for (const code of [
      'INVALID_ARGUMENT',
      'UNAUTHORIZED',
      'FORBIDDEN',
      'QUEUE_NOT_FOUND',
      'PROTOCOL_ERROR',
    ] as const) {
      expect(isRetryable(code), code).toBe(false);
    }
  });

  it('FlotillaError carries code, details, cause and a field shortcut', () => {
    const cause = new Error('socket closed');
    const error = new FlotillaError(
      'INVALID_ARGUMENT',
      'messages[0].body: too big',
      { field: 'messages[0].body' },
      { cause },
    );
    expect(error).toBeInstanceOf(Error);
    expect(isFlotillaError(error)).toBe(true);
    expect(isFlotillaError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect(isFlotillaError(error, 'TIMEOUT')).toBe(false);
    expect(error.name).toBe('FlotillaError');
    expect(error.cause).toBe(cause);
    expect(error.field).toBe('messages[0].body');
    expect(error.retryable).toBe(false);
    expect(new FlotillaError('TIMEOUT', 't').maybeApplied).toBe(true);
  });
});

describe('body formats', () => {
  it('bytes stay the same array, strings are UTF-8, values are msgpack', () => {
    const bytes = new Uint8Array([1, 2]);
    expect(encodeBody(bytes)).toEqual({ body: bytes, format: BodyFormat.Bytes });
    expect(encodeBody(bytes).body).toBe(bytes);
    const text = encodeBody('héllo');
    expect(text.format).toBe(BodyFormat.Utf8);
    expect(decodeBody(text.body, text.format)).toBe('héllo');
    const value = { to: 'a@b.c', n: [1, 2], nested: { ok: true } };
    const packed = encodeBody(value);
    expect(packed.format).toBe(BodyFormat.Msgpack);
    expect(decodeBody(packed.body, packed.format)).toEqual(value);
    expect(decodeBody(new TextEncoder().encode('{"a":1}'), BodyFormat.Json)).toEqual({ a: 1 });
  });

  it('bodies that do not match their format are PROTOCOL_ERROR', () => {
    for (const [body, format] of [
      [new Uint8Array([0xff]), BodyFormat.Utf8],
      [new Uint8Array([0xc1]), BodyFormat.Msgpack],
      [new Uint8Array([0x7b]), BodyFormat.Json],
      [new Uint8Array([1]), 9 as BodyFormat],
    ] as const) {
      expect(() => decodeBody(body, format)).toThrow(expect.objectContaining({ code: 'PROTOCOL_ERROR' }));
    }
  });
});
