/**
 * Proves the msgpack reader and writer: values round-trip, encodings are the smallest the spec
 * allows (so other msgpack implementations interoperate), and hostile input (truncation, huge
 * declared lengths, deep nesting, bad UTF-8, reserved bytes, unknown extensions) is refused with
 * PROTOCOL_ERROR and never crashes or allocates by the declared size. Input that merely ends too
 * early says how long it needed to be; `strPresized` (the queue formats' string form) writes the
 * header its UTF-16 length calls for and reads back like any string.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from './errors.js';
import {
  decodeMsgpack,
  encodeMsgpack,
  MsgpackReader,
  MsgpackWriter,
  truncatedInputBytes,
} from './msgpack.js';

function expectProtocolError(bytes: number[] | Uint8Array): void {
  try {
    decodeMsgpack(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  } catch (error) {
    expect(error).toBeInstanceOf(FlotillaError);
    expect((error as FlotillaError).code).toBe('PROTOCOL_ERROR');
    return;
  }
  throw new Error(`expected PROTOCOL_ERROR for ${Array.from(bytes)}`);
}

/** Values the codec maps one to one (no undefined, -0, sparse arrays or non-plain objects). */
const plainValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.double({ noDefaultInfinity: false }).filter((d) => !Object.is(d, -0)),
    fc.string(),
    fc.uint8Array({ maxLength: 32 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string(), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('round trip', () => {
  it('decode(encode(v)) equals v for any plain value', () => {
    fc.assert(
      fc.property(plainValue, (value) => {
        expect(decodeMsgpack(encodeMsgpack(value))).toEqual(value);
      }),
      { numRuns: 500 },
    );
  });

  it('integers at every format boundary', () => {
    const edges = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    const all = edges.flatMap((n) => [n, -n - 1, ...(n > 0 ? [-n] : [])]).filter(Number.isSafeInteger);
    for (const n of all) expect(decodeMsgpack(encodeMsgpack(n))).toBe(n);
  });

  it('strings of every length class and script', () => {
    for (const s of [
      '',
      'a',
      'x'.repeat(31),
      'x'.repeat(32),
      'é'.repeat(100),
      '漢'.repeat(30000),
      '😀x'.repeat(10),
    ]) {
      expect(decodeMsgpack(encodeMsgpack(s))).toBe(s);
    }
  });

  it('the short-string cache never returns a stale string', () => {
    // 'aXYb' and 'ab¢' (61 62 c2 a2) share a cache slot; the second is not ASCII and stops midway.
    for (const s of ['aXYb', 'ab¢', 'abYb', 'aXYb']) expect(decodeMsgpack(encodeMsgpack(s))).toBe(s);
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'X', '¢', 'é'), maxLength: 6 })),
        (list) => {
          for (const s of list) expect(decodeMsgpack(encodeMsgpack(s))).toBe(s);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('Dates as timestamps; Maps as maps; undefined members skipped', () => {
    const date = new Date(1_700_000_000_123);
    expect(decodeMsgpack(encodeMsgpack(date))).toEqual(date);
    expect(decodeMsgpack(encodeMsgpack(new Date(-1)))).toEqual(new Date(-1));
    expect(decodeMsgpack(encodeMsgpack(new Map([['a', 1]])))).toEqual({ a: 1 });
    expect(decodeMsgpack(encodeMsgpack({ a: undefined, b: 2 }))).toEqual({ b: 2 });
  });

  it('refuses to encode what msgpack cannot carry', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const value of [() => 1, Symbol('s'), cyclic, 2n ** 64n]) {
      expect(() => encodeMsgpack(value)).toThrow(FlotillaError);
    }
    expect(decodeMsgpack(encodeMsgpack(5n))).toBe(5);
  });
});

describe('smallest encodings (spec conformance)', () => {
  const cases: [unknown, number[]][] = [
    [0, [0x00]],
    [127, [0x7f]],
    [128, [0xcc, 0x80]],
    [256, [0xcd, 0x01, 0x00]],
    [65536, [0xce, 0x00, 0x01, 0x00, 0x00]],
    [2 ** 32, [0xcf, 0, 0, 0, 1, 0, 0, 0, 0]],
    [-1, [0xff]],
    [-32, [0xe0]],
    [-33, [0xd0, 0xdf]],
    [-129, [0xd1, 0xff, 0x7f]],
    [-(2 ** 31) - 1, [0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]],
    [1.5, [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]],
    [null, [0xc0]],
    [true, [0xc3]],
    ['a', [0xa1, 0x61]],
    [[1], [0x91, 0x01]],
    [{ a: 1 }, [0x81, 0xa1, 0x61, 0x01]],
    [new Uint8Array([7]), [0xc4, 0x01, 0x07]],
  ];
  for (const [value, expected] of cases) {
    it(`${JSON.stringify(value) ?? String(value)} → ${expected.map((b) => b.toString(16)).join(' ')}`, () => {
      expect(Array.from(encodeMsgpack(value))).toEqual(expected);
    });
  }

  it('a non-ASCII string gets the smallest header after UTF-8 encoding', () => {
    // 11 characters could need 33 bytes (str8), but 'é'×11 is 22 bytes: fixstr.
    expect(encodeMsgpack('é'.repeat(11))[0]).toBe(0xa0 | 22);
  });

  it('reads float32, 16- and 32-bit containers and all timestamp forms', () => {
    expect(decodeMsgpack(new Uint8Array([0xca, 0x3f, 0xc0, 0, 0]))).toBe(1.5);
    expect(decodeMsgpack(new Uint8Array([0xdc, 0, 1, 0x05]))).toEqual([5]);
    expect(decodeMsgpack(new Uint8Array([0xdd, 0, 0, 0, 1, 0x05]))).toEqual([5]);
    expect(decodeMsgpack(new Uint8Array([0xde, 0, 1, 0xa1, 0x61, 0x05]))).toEqual({ a: 5 });
    expect(decodeMsgpack(new Uint8Array([0xd6, 0xff, 0, 0, 0, 2]))).toEqual(new Date(2000));
    // timestamp 64: nanoseconds 1_000_000 (<<2), seconds 3
    const ts64 = [0xd7, 0xff, 0x00, 0x3d, 0x09, 0x00, 0, 0, 0, 3];
    expect(decodeMsgpack(new Uint8Array(ts64))).toEqual(new Date(3001));
    expect(decodeMsgpack(new Uint8Array([0x81, 0x07, 0x01]))).toEqual({ 7: 1 });
  });
});

describe('hostile input', () => {
  it('every proper prefix of a valid encoding is refused', () => {
    fc.assert(
      fc.property(plainValue, (value) => {
        const bytes = encodeMsgpack(value);
        for (let cut = 0; cut < bytes.length; cut++) expectProtocolError(bytes.subarray(0, cut));
      }),
      { numRuns: 100 },
    );
  });

  it('declared lengths beyond the input are refused before allocating', () => {
    expectProtocolError([0xdd, 0xff, 0xff, 0xff, 0xff]); // array of 4 billion
    expectProtocolError([0xdf, 0xff, 0xff, 0xff, 0xff]); // map of 4 billion
    expectProtocolError([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]); // string of 4 GiB
    expectProtocolError([0xc6, 0x7f, 0xff, 0xff, 0xff]); // bin of 2 GiB
    expectProtocolError([0xde, 0x00, 0x02, 0xa1, 0x61, 0x01]); // map of 2 with one pair
  });

  it('deep nesting is refused, not a stack overflow', () => {
    expectProtocolError(new Uint8Array(100_000).fill(0x91));
    // 65 arrays around a 1: one level past the default depth of 64.
    const nested = new Uint8Array(66).fill(0x91);
    nested[65] = 0x01;
    expectProtocolError(nested);
    expect(decodeMsgpack(nested.subarray(1))).toBeDefined();
  });

  it('reserved bytes, trailing bytes, bad UTF-8, unknown extensions and bad keys are refused', () => {
    expectProtocolError([0xc1]);
    expectProtocolError([0x01, 0x02]);
    expectProtocolError([0xa2, 0xc3, 0x28]);
    expectProtocolError([0xa1, 0xff]);
    expectProtocolError([0xd4, 0x05, 0x00]);
    expectProtocolError([0xc7, 0x01, 0x05, 0x00]);
    expectProtocolError([0xd6, 0xff, 0, 0]);
    expectProtocolError([0x81, 0xc0, 0x01]);
    expectProtocolError([0x81, 0x91, 0x01, 0x01]);
    expectProtocolError([0xd7, 0xff, 0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 0]); // nanoseconds > 999999999
    expectProtocolError([0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0]); // uint64 beyond 2^53
  });

  it('random bytes never throw anything but PROTOCOL_ERROR', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeMsgpack(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(FlotillaError);
          expect((error as FlotillaError).code).toBe('PROTOCOL_ERROR');
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('"__proto__" keys become own properties without touching prototypes', () => {
    const bytes = new Uint8Array([
      0x81,
      0xa9,
      ...new TextEncoder().encode('__proto__'),
      0x81,
      0xa1,
      0x78,
      0x01,
    ]);
    const value = decodeMsgpack(bytes) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.hasOwn(value, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('bin values are views of the input', () => {
    const input = encodeMsgpack([new Uint8Array([1, 2, 3])]);
    const [bin] = decodeMsgpack(input) as [Uint8Array];
    expect(bin.buffer).toBe(input.buffer);
    expect(bin.byteOffset).toBe(3);
  });
});

describe('presized strings (the queue log and snapshot form)', () => {
  function presized(value: string): Uint8Array {
    const w = new MsgpackWriter(16);
    w.strPresized(value);
    return w.finish();
  }

  it('picks the header from 3 bytes per UTF-16 unit, not from the UTF-8 length', () => {
    const cases: [string, number[]][] = [
      ['', [0xa0]],
      ['x'.repeat(10), [0xaa]],
      ['x'.repeat(11), [0xd9, 11]],
      ['x'.repeat(85), [0xd9, 85]],
      ['x'.repeat(86), [0xda, 0, 86]],
      ['é'.repeat(10), [0xb4]],
      ['x'.repeat(21_846), [0xdb, 0, 0, 0x55, 0x56]],
    ];
    for (const [value, header] of cases) {
      const bytes = presized(value);
      expect(Array.from(bytes.subarray(0, header.length)), `${value.length} units`).toEqual(header);
      expect(bytes.length - header.length).toBe(new TextEncoder().encode(value).length);
    }
  });

  it('reads back as the same string for any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (value) => {
        expect(decodeMsgpack(presized(value))).toBe(value);
      }),
      { numRuns: 300 },
    );
  });
});

describe('input that ends too early', () => {
  function neededFor(bytes: number[]): number | null {
    try {
      new MsgpackReader(new Uint8Array(bytes)).skip(8);
    } catch (error) {
      return truncatedInputBytes(error);
    }
    throw new Error('expected an error');
  }

  it('reports the length the value needs at least', () => {
    expect(neededFor([])).toBe(1);
    expect(neededFor([0xa3, 0x61])).toBe(4); // a 3-byte string
    expect(neededFor([0xc5, 0x01])).toBe(3); // a bin16 header cut short
    expect(neededFor([0x93, 0x01])).toBe(4); // an array of 3 with 1 element present
    expect(neededFor([0x82, 0xa1, 0x61])).toBe(5); // a map of 2 pairs
  });

  it('reports nothing for bytes that are wrong rather than short', () => {
    expect(neededFor([0xc1])).toBeNull();
    expect(neededFor([0xa2, 0xff, 0xfe])).toBeNull();
    expect(truncatedInputBytes(new Error('other'))).toBeNull();
  });
});
