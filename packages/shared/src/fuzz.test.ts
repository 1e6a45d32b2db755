/**
 * Fuzzes both decoders with random bytes and with valid frames mutated (bytes flipped, inserted,
 * deleted, truncated). Proves they never throw, only ever report the expected error codes (never
 * INTERNAL, which would mean a decoder bug), and that anything they accept is a genuinely valid
 * request: it re-encodes and decodes to the same value.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRequest, encodeRequest } from './codec-request.js';
import { decodeServerFrame, encodeDeliver, encodeError, encodeResult } from './codec-server.js';
import { type ErrorCode, FlotillaError } from './errors.js';
import { anyRequest, deliveredList, queueName } from './test-arbitraries.js';

const REQUEST_ERRORS: ErrorCode[] = [
  'PROTOCOL_ERROR',
  'INVALID_ARGUMENT',
  'UNKNOWN_OP',
  'UNSUPPORTED_VERSION',
  'MESSAGE_TOO_LARGE',
  'FRAME_TOO_LARGE',
];

/** Decodes and checks the outcome: a refusal with an expected code, or a request that round-trips. */
function checkRequestDecode(frame: Uint8Array): void {
  const decoded = decodeRequest(frame);
  if (!decoded.ok) {
    expect(decoded.error).toBeInstanceOf(FlotillaError);
    expect(REQUEST_ERRORS, decoded.error.message).toContain(decoded.error.code);
    return;
  }
  const { id, op, params } = decoded.value;
  const again = decodeRequest(encodeRequest(id, op, params as never));
  if (!again.ok) throw new Error(`accepted a frame whose re-encoding is refused: ${again.error.message}`);
  expect(again.value).toEqual(decoded.value);
}

function checkServerDecode(frame: Uint8Array): void {
  const decoded = decodeServerFrame(frame);
  if (!decoded.ok) {
    expect(decoded.error).toBeInstanceOf(FlotillaError);
    expect(['PROTOCOL_ERROR', 'INVALID_ARGUMENT']).toContain(decoded.error.code);
  }
}

type Mutation = { kind: 'flip' | 'set' | 'insert' | 'delete' | 'truncate'; at: number; byte: number };

const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
  at: fc.nat(),
  byte: fc.nat(255),
});

function mutate(frame: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = Array.from(frame);
  for (const { kind, at, byte } of mutations) {
    const i = bytes.length === 0 ? 0 : at % bytes.length;
    if (kind === 'flip') bytes[i] = (bytes[i] ?? 0) ^ (1 << (byte % 8));
    else if (kind === 'set') bytes[i] = byte;
    else if (kind === 'insert') bytes.splice(i, 0, byte);
    else if (kind === 'delete') bytes.splice(i, 1);
    else bytes = bytes.slice(0, i);
  }
  return new Uint8Array(bytes);
}

/** Byte values that matter most to msgpack: type bytes and length boundaries. */
const interestingByte = fc.constantFrom(
  0x00,
  0x7f,
  0x80,
  0x90,
  0x9f,
  0xa0,
  0xbf,
  0xc0,
  0xc1,
  0xc4,
  0xcb,
  0xcf,
  0xd3,
  0xdc,
  0xdd,
  0xdf,
  0xff,
);

describe('decodeRequest under fuzzing', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) => checkRequestDecode(bytes)),
      { numRuns: 3000 },
    );
  });

  it('random bytes behind a valid request envelope reach the argument readers', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0x93, max: 0x9f }),
        fc.integer({ min: 1, max: 18 }),
        fc.uint8Array({ maxLength: 64 }),
        (header, op, tail) => checkRequestDecode(new Uint8Array([header, 0x00, 0x01, op, ...tail])),
      ),
      { numRuns: 3000 },
    );
  });

  it('mutated valid frames', () => {
    fc.assert(
      fc.property(
        anyRequest,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        ([id, op, params], mutations) => {
          checkRequestDecode(mutate(encodeRequest(id, op, params as never), mutations));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('valid frames with msgpack-significant bytes planted', () => {
    fc.assert(
      fc.property(anyRequest, fc.nat(), interestingByte, ([id, op, params], at, byte) => {
        checkRequestDecode(mutate(encodeRequest(id, op, params as never), [{ kind: 'set', at, byte }]));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('decodeServerFrame under fuzzing', () => {
  const serverFrame = fc.oneof(
    fc.tuple(fc.nat(100), queueName, deliveredList).map(([subId, queue, list]) =>
      encodeDeliver(
        subId,
        queue,
        list.map((m) => ({ ...m, queue })),
      ),
    ),
    fc
      .array(fc.maxSafeNat(), { maxLength: 5 })
      .map((seqs) => encodeResult(1, 'publish', { seqs, duplicates: [] })),
    fc
      .string()
      .map((message) => encodeError(3, new FlotillaError('NOT_LEADER', message, { leaderId: 'n1' }))),
  );

  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) => checkServerDecode(bytes)),
      { numRuns: 3000 },
    );
  });

  it('mutated valid frames', () => {
    fc.assert(
      fc.property(serverFrame, fc.array(mutation, { minLength: 1, maxLength: 4 }), (frame, mutations) =>
        checkServerDecode(mutate(frame, mutations)),
      ),
      { numRuns: 3000 },
    );
  });
});
