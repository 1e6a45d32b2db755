/**
 * Proves that decodeRequest refuses each kind of bad client input with the exact error code and
 * field, and that every limit holds exactly at its boundary: the limit is accepted, limit + 1 is
 * refused. Frames are built by hand with the generic msgpack writer so that they can be wrong in
 * ways the typed encoder would never produce.
 */

import { describe, expect, it } from 'vitest';
import { decodeRequest, encodeRequest } from './codec-request.js';
import type { ErrorCode } from './errors.js';
import { OP, type OpName } from './frames.js';
import { DEFAULT_LIMITS, type ProtocolLimits } from './limits.js';
import { encodeMsgpack } from './msgpack.js';

const L = DEFAULT_LIMITS;
const ID = 77;
const bytes = (n: number) => new Uint8Array(n);
const body = bytes(1);

function request(op: OpName, ...args: unknown[]): Uint8Array {
  return encodeMsgpack([0, ID, OP[op], ...args]);
}

/** A publish to queue 'q' of raw message arrays. */
function publish(...messages: unknown[]): Uint8Array {
  return request('publish', 'q', messages);
}

function expectRejected(
  frame: Uint8Array,
  code: ErrorCode,
  field?: string,
  limits: ProtocolLimits = L,
): void {
  const decoded = decodeRequest(frame, limits);
  if (decoded.ok)
    throw new Error(`expected ${code} but the frame was accepted: ${JSON.stringify(decoded.value)}`);
  expect(decoded.error.code, decoded.error.message).toBe(code);
  if (field !== undefined) expect(decoded.error.details.field, decoded.error.message).toBe(field);
}

function expectAccepted(frame: Uint8Array, limits: ProtocolLimits = L): void {
  const decoded = decodeRequest(frame, limits);
  if (!decoded.ok) throw decoded.error;
}

describe('envelope', () => {
  it('refuses frames that are not request arrays with PROTOCOL_ERROR and id 0', () => {
    for (const value of [
      { a: 1 },
      5,
      'hello',
      null,
      [],
      [0, 1],
      [1, ID, OP.cluster],
      ['0', ID, OP.cluster],
    ]) {
      const decoded = decodeRequest(encodeMsgpack(value));
      expect(decoded).toMatchObject({ ok: false, id: 0, error: { code: 'PROTOCOL_ERROR' } });
    }
    expect(decodeRequest(new Uint8Array(0))).toMatchObject({ ok: false, error: { code: 'PROTOCOL_ERROR' } });
  });

  it('refuses request ids outside 1..2^32-1 or not integers', () => {
    for (const id of [0, -1, 1.5, 2 ** 32, 'x', null, Number.NaN]) {
      expectRejected(encodeMsgpack([0, id, OP.cluster]), 'PROTOCOL_ERROR');
    }
    expectAccepted(encodeMsgpack([0, 2 ** 32 - 1, OP.cluster]));
  });

  it('answers an unknown op with UNKNOWN_OP and the request id', () => {
    for (const op of [0, 19, 255, 70000, -3]) {
      expect(decodeRequest(encodeMsgpack([0, ID, op]))).toMatchObject({
        ok: false,
        id: ID,
        op: null,
        error: { code: 'UNKNOWN_OP' },
      });
    }
    expectRejected(encodeMsgpack([0, ID, 'publish']), 'PROTOCOL_ERROR');
  });

  it('refuses wrong argument counts naming "arguments", keeping id and op', () => {
    expect(decodeRequest(request('deleteQueue'))).toMatchObject({
      ok: false,
      id: ID,
      op: 'deleteQueue',
      error: { code: 'INVALID_ARGUMENT', details: { field: 'arguments' } },
    });
    expectRejected(request('deleteQueue', 'a', 'b'), 'INVALID_ARGUMENT', 'arguments');
    expectRejected(request('cluster', 1), 'INVALID_ARGUMENT', 'arguments');
    expectRejected(request('receive', 'q', 1), 'INVALID_ARGUMENT', 'arguments');
    expectRejected(request('hello', 1, null, null, 'extra'), 'INVALID_ARGUMENT', 'arguments');
  });

  it('refuses trailing bytes after the frame', () => {
    const frame = request('cluster');
    const padded = new Uint8Array(frame.length + 1);
    padded.set(frame);
    expect(decodeRequest(padded)).toMatchObject({ ok: false, id: ID, error: { code: 'PROTOCOL_ERROR' } });
  });

  it('maxFrameBytes: the limit is accepted, one byte more is FRAME_TOO_LARGE', () => {
    const frame = publish([bytes(100)]);
    expectAccepted(frame, { ...L, maxFrameBytes: frame.length });
    expectRejected(frame, 'FRAME_TOO_LARGE', undefined, { ...L, maxFrameBytes: frame.length - 1 });
  });

  it('default maxFrameBytes holds at 4 MiB', () => {
    const messages = Array.from({ length: 4 }, () => [bytes(L.maxMessageBytes)]);
    const frame = publish(...messages);
    expect(frame.length).toBeGreaterThan(L.maxFrameBytes);
    expectRejected(frame, 'FRAME_TOO_LARGE');
    const fitting = publish(...messages.slice(0, 3), [bytes(L.maxFrameBytes - 3 * L.maxMessageBytes - 64)]);
    expect(fitting.length).toBeLessThanOrEqual(L.maxFrameBytes);
    expectAccepted(fitting);
  });
});

describe('hello', () => {
  it('refuses unsupported versions with their range, even with extra args from a newer client', () => {
    for (const version of [0, 2, 99]) {
      const decoded = decodeRequest(request('hello', version, null, null, 'future'));
      expect(decoded).toMatchObject({
        ok: false,
        id: ID,
        error: { code: 'UNSUPPORTED_VERSION', details: { field: 'version', minVersion: 1, maxVersion: 1 } },
      });
    }
    expectRejected(request('hello', '1'), 'INVALID_ARGUMENT', 'version');
  });

  it('token and name limits hold at the boundary', () => {
    expectAccepted(request('hello', 1, 't'.repeat(L.maxTokenBytes)));
    expectRejected(request('hello', 1, 't'.repeat(L.maxTokenBytes + 1)), 'INVALID_ARGUMENT', 'token');
    expectAccepted(request('hello', 1, null, 'n'.repeat(L.maxClientNameBytes)));
    expectRejected(
      request('hello', 1, null, 'n'.repeat(L.maxClientNameBytes + 1)),
      'INVALID_ARGUMENT',
      'name',
    );
    expectRejected(request('hello', 1, 5), 'INVALID_ARGUMENT', 'token');
  });
});

describe('queue names', () => {
  it('accept 1..200 of [A-Za-z0-9._:-] and refuse the rest', () => {
    expectAccepted(request('queueStats', 'a'));
    expectAccepted(request('queueStats', 'Az09._:-'));
    expectAccepted(request('queueStats', 'x'.repeat(200)));
    for (const bad of ['', 'x'.repeat(201), 'a b', 'a/b', 'é', 'a\u0000b', '*']) {
      expectRejected(request('queueStats', bad), 'INVALID_ARGUMENT', 'name');
    }
    for (const bad of [1, null, true, bytes(1), ['q']]) {
      expectRejected(request('queueStats', bad), 'INVALID_ARGUMENT', 'name');
    }
  });

  it('name each op its own field', () => {
    expectRejected(request('publish', '', [[body]]), 'INVALID_ARGUMENT', 'queue');
    expectRejected(request('subscribe', '!', 1), 'INVALID_ARGUMENT', 'queue');
    expectRejected(request('redrive', 'dlq', 'bad name'), 'INVALID_ARGUMENT', 'target');
    expectRejected(request('redrive', '#'), 'INVALID_ARGUMENT', 'dlq');
  });
});

describe('publish', () => {
  it('refuses a missing, empty or oversized batch', () => {
    expectRejected(request('publish', 'q', 'x'), 'INVALID_ARGUMENT', 'messages');
    expectRejected(publish(), 'INVALID_ARGUMENT', 'messages');
    const limits = { ...L, maxPublishBatch: 3 };
    expectAccepted(publish([body], [body], [body]), limits);
    expectRejected(publish([body], [body], [body], [body]), 'INVALID_ARGUMENT', 'messages', limits);
  });

  it('default maxPublishBatch holds at its boundary', () => {
    expectAccepted(publish(...Array.from({ length: L.maxPublishBatch }, () => [body])));
    expectRejected(
      publish(...Array.from({ length: L.maxPublishBatch + 1 }, () => [body])),
      'INVALID_ARGUMENT',
      'messages',
    );
  });

  it('refuses malformed message arrays naming the element', () => {
    expectRejected(publish('x'), 'INVALID_ARGUMENT', 'messages[0]');
    expectRejected(publish([]), 'INVALID_ARGUMENT', 'messages[0]');
    expectRejected(
      publish([body, 0, null, null, null, null, null, 0, 'junk']),
      'INVALID_ARGUMENT',
      'messages[0]',
    );
    expectRejected(publish([body], 'x'), 'INVALID_ARGUMENT', 'messages[1]');
  });

  it('body: bytes only, at most maxMessageBytes (MESSAGE_TOO_LARGE beyond)', () => {
    expectRejected(publish(['text']), 'INVALID_ARGUMENT', 'messages[0].body');
    expectRejected(publish([null]), 'INVALID_ARGUMENT', 'messages[0].body');
    expectAccepted(publish([bytes(0)]));
    expectAccepted(publish([bytes(L.maxMessageBytes)]));
    expectRejected(publish([body], [bytes(L.maxMessageBytes + 1)]), 'MESSAGE_TOO_LARGE', 'messages[1].body');
  });

  /** [element index, field name, accepted boundary values, refused values]. */
  const fieldCases: [number, string, unknown[], unknown[]][] = [
    [1, 'format', [0, 3], [4, -1, 1.5, 'bytes', true]],
    [
      3,
      'idempotencyKey',
      ['k', 'k'.repeat(L.maxIdempotencyKeyBytes)],
      ['', 'k'.repeat(L.maxIdempotencyKeyBytes + 1), 5],
    ],
    [
      4,
      'delayMs',
      [0, L.maxDelayMs],
      [-1, 1.5, L.maxDelayMs + 1, Number.NaN, Number.POSITIVE_INFINITY, '5', 2 ** 64],
    ],
    [5, 'ttlMs', [1, L.maxTtlMs], [0, L.maxTtlMs + 1, -5, 0.5]],
    [6, 'group', ['g', 'g'.repeat(L.maxGroupBytes)], ['', 'g'.repeat(L.maxGroupBytes + 1), 7, bytes(1)]],
    [7, 'priority', [0, L.maxPriorityLevels - 1], [L.maxPriorityLevels, -1, 1.1, '1']],
  ];

  for (const [index, field, good, bad] of fieldCases) {
    it(`${field}: boundary values accepted, bad values refused`, () => {
      const message = (value: unknown) => {
        const m: unknown[] = [body, null, null, null, null, null, null, null];
        m[index] = value;
        return m;
      };
      for (const value of good) expectAccepted(publish(message(value)));
      for (const value of bad)
        expectRejected(publish([body], message(value)), 'INVALID_ARGUMENT', `messages[1].${field}`);
    });
  }

  it('idempotency keys and groups count UTF-8 bytes, not characters', () => {
    const euro = '€'; // 3 bytes in UTF-8
    const fits = euro.repeat(Math.floor(L.maxIdempotencyKeyBytes / 3));
    expectAccepted(publish([body, null, null, fits]));
    expectRejected(publish([body, null, null, `${fits}€`]), 'INVALID_ARGUMENT', 'messages[0].idempotencyKey');
  });

  it('headers: a map of strings within count and byte limits', () => {
    const at = (headers: unknown) => publish([body, null, headers]);
    expectAccepted(at({ a: 'b' }));
    expectAccepted(at({}));
    expectRejected(at(['a', 'b']), 'INVALID_ARGUMENT', 'messages[0].headers');
    expectRejected(at({ a: 1 }), 'INVALID_ARGUMENT', 'messages[0].headers.a');
    expectRejected(at({ '': 'x' }), 'INVALID_ARGUMENT', 'messages[0].headers');
    expectRejected(at(new Map([[1, 'x']])), 'INVALID_ARGUMENT', 'messages[0].headers');
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${i}`, '']));
    expectAccepted(at(many(L.maxHeaders)));
    expectRejected(at(many(L.maxHeaders + 1)), 'INVALID_ARGUMENT', 'messages[0].headers');
    // One header whose key and value add up to exactly the byte budget, then one byte more.
    expectAccepted(at({ k: 'v'.repeat(L.maxHeaderBytes - 1) }));
    expectRejected(at({ k: 'v'.repeat(L.maxHeaderBytes) }), 'INVALID_ARGUMENT', 'messages[0].headers');
  });

  it('a "__proto__" header is an own property and pollutes nothing', () => {
    // An object literal with __proto__ would set its prototype, so the map is built from a Map.
    const frame = encodeMsgpack([0, ID, OP.publish, 'q', [[body, null, new Map([['__proto__', 'x']])]]]);
    const result = decodeRequest(frame);
    if (!result.ok || result.value.op !== 'publish') throw new Error('expected publish');
    const headers = result.value.params.messages[0]!.headers!;
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    expect(Object.keys(headers)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('ack, nack, extend', () => {
  const triple = ['q', 1, 1];
  it('items: a non-empty flat list of triples within maxAckBatch', () => {
    expectRejected(request('ack', 'x'), 'INVALID_ARGUMENT', 'items');
    expectRejected(request('ack', []), 'INVALID_ARGUMENT', 'items');
    expectRejected(request('ack', ['q', 1]), 'INVALID_ARGUMENT', 'items');
    expectRejected(request('ack', [...triple, 'q']), 'INVALID_ARGUMENT', 'items');
    const limits = { ...L, maxAckBatch: 2 };
    expectAccepted(request('ack', [...triple, ...triple]), limits);
    expectRejected(request('ack', [...triple, ...triple, ...triple]), 'INVALID_ARGUMENT', 'items', limits);
  });

  it('default maxAckBatch holds at its boundary', () => {
    const items = (n: number) => Array.from({ length: n }, () => triple).flat();
    expectAccepted(request('ack', items(L.maxAckBatch)));
    expectRejected(request('ack', items(L.maxAckBatch + 1)), 'INVALID_ARGUMENT', 'items');
  });

  it('names the bad item and field', () => {
    expectRejected(request('ack', [...triple, 'q', 0, 1]), 'INVALID_ARGUMENT', 'items[1].seq');
    expectRejected(request('ack', [...triple, 'q', 1, 0]), 'INVALID_ARGUMENT', 'items[1].deliveryId');
    expectRejected(request('ack', ['bad name', 1, 1]), 'INVALID_ARGUMENT', 'items[0].queue');
    expectRejected(request('ack', ['q', 1.5, 1]), 'INVALID_ARGUMENT', 'items[0].seq');
    expectRejected(request('ack', ['q', 2 ** 53, 1]), 'INVALID_ARGUMENT', 'items[0].seq');
  });

  it('nack delay and extend duration hold their ranges', () => {
    expectAccepted(request('nack', triple));
    expectAccepted(request('nack', triple, L.maxDelayMs));
    expectRejected(request('nack', triple, L.maxDelayMs + 1), 'INVALID_ARGUMENT', 'delayMs');
    expectRejected(request('nack', triple, -1), 'INVALID_ARGUMENT', 'delayMs');
    expectAccepted(request('extend', triple, L.maxVisibilityTimeoutMs));
    expectRejected(request('extend', triple, L.maxVisibilityTimeoutMs + 1), 'INVALID_ARGUMENT', 'ms');
    expectRejected(request('extend', triple, 0), 'INVALID_ARGUMENT', 'ms');
    expectRejected(request('extend', triple), 'INVALID_ARGUMENT', 'arguments');
  });

  it('a nack may reject (deadLetter), but not with a delay', () => {
    const rejected = decodeRequest(request('nack', triple, null, true));
    expect(rejected).toMatchObject({ ok: true, value: { params: { deadLetter: true } } });
    const plain = decodeRequest(request('nack', triple, null, false));
    expect(plain.ok && 'deadLetter' in plain.value.params).toBe(false);
    expectRejected(request('nack', triple, 5, true), 'INVALID_ARGUMENT', 'deadLetter');
    expectRejected(request('nack', triple, null, 'yes'), 'INVALID_ARGUMENT', 'deadLetter');
    expectRejected(request('nack', triple, null, true, 1), 'INVALID_ARGUMENT', 'arguments');
  });
});

describe('subscriptions, receive, peek, redrive', () => {
  it('prefetch and credit ranges', () => {
    expectAccepted(request('subscribe', 'q', L.maxPrefetch));
    expectRejected(request('subscribe', 'q', L.maxPrefetch + 1), 'INVALID_ARGUMENT', 'prefetch');
    expectRejected(request('subscribe', 'q', 0), 'INVALID_ARGUMENT', 'prefetch');
    expectAccepted(request('credit', 1, 0));
    expectAccepted(request('credit', 1, L.maxPrefetch));
    expectRejected(request('credit', 1, L.maxPrefetch + 1), 'INVALID_ARGUMENT', 'prefetch');
    expectRejected(request('credit', 0, 1), 'INVALID_ARGUMENT', 'subId');
    expectRejected(request('unsubscribe', 2 ** 32), 'INVALID_ARGUMENT', 'subId');
  });

  it('receive ranges', () => {
    expectAccepted(
      request('receive', 'q', L.maxReceiveMessages, L.maxReceiveWaitMs, L.maxVisibilityTimeoutMs),
    );
    expectRejected(request('receive', 'q', 0, 0), 'INVALID_ARGUMENT', 'max');
    expectRejected(request('receive', 'q', L.maxReceiveMessages + 1, 0), 'INVALID_ARGUMENT', 'max');
    expectRejected(request('receive', 'q', 1, L.maxReceiveWaitMs + 1), 'INVALID_ARGUMENT', 'waitMs');
    expectRejected(request('receive', 'q', 1, 0, 0), 'INVALID_ARGUMENT', 'visibilityTimeoutMs');
  });

  it('peek and redrive ranges', () => {
    expectAccepted(request('peek', 'q', 1, 0));
    expectRejected(request('peek', 'q', 1, -1), 'INVALID_ARGUMENT', 'fromSeq');
    expectAccepted(request('redrive', 'dlq', null, L.maxRedriveMessages));
    expectRejected(request('redrive', 'dlq', null, L.maxRedriveMessages + 1), 'INVALID_ARGUMENT', 'max');
    expectRejected(request('redrive', 'dlq', null, 0), 'INVALID_ARGUMENT', 'max');
  });
});

describe('queue options on the wire', () => {
  const create = (options: unknown) => request('createQueue', 'q', options);
  it('refuses unknown options, wrong types and out-of-range values naming the option', () => {
    expectRejected(create('x'), 'INVALID_ARGUMENT', 'options');
    expectRejected(create({ colour: 'red' }), 'INVALID_ARGUMENT', 'options.colour');
    expectRejected(create({ visibilityTimeoutMs: 0 }), 'INVALID_ARGUMENT', 'options.visibilityTimeoutMs');
    expectRejected(create({ visibilityTimeoutMs: '30s' }), 'INVALID_ARGUMENT', 'options.visibilityTimeoutMs');
    expectRejected(create({ priorityLevels: 11 }), 'INVALID_ARGUMENT', 'options.priorityLevels');
    expectRejected(create({ priorityLevels: 0 }), 'INVALID_ARGUMENT', 'options.priorityLevels');
    expectRejected(create({ overflow: 'drop-newest' }), 'INVALID_ARGUMENT', 'options.overflow');
    expectRejected(create({ retry: { jitter: true } }), 'INVALID_ARGUMENT', 'options.retry.jitter');
    expectRejected(create({ deadLetterQueue: 'no spaces' }), 'INVALID_ARGUMENT', 'options.deadLetterQueue');
    expectRejected(create({ maxMessages: null }), 'INVALID_ARGUMENT', 'options.maxMessages');
  });

  it('applies the cross-field rules on create', () => {
    expectRejected(create({ deadLetterQueue: 'q' }), 'INVALID_ARGUMENT', 'options.deadLetterQueue');
    expectRejected(
      create({ retry: { backoff: 'exponential', delayMs: 100, maxDelayMs: 99 } }),
      'INVALID_ARGUMENT',
      'options.retry.maxDelayMs',
    );
    expectAccepted(create({ retry: { backoff: 'exponential', delayMs: 100, maxDelayMs: 100 } }));
    expectAccepted(create({ priorityLevels: 10, deadLetterQueue: 'q.dlq' }));
  });

  it('refuses changing fixed options on update', () => {
    expectRejected(
      request('updateQueue', 'q', { priorityLevels: 2 }),
      'INVALID_ARGUMENT',
      'options.priorityLevels',
    );
    expectRejected(
      request('updateQueue', 'q', { deadLetterQueue: 'q' }),
      'INVALID_ARGUMENT',
      'options.deadLetterQueue',
    );
    expectAccepted(request('updateQueue', 'q', { deadLetterQueue: null, maxDeliveries: 3 }));
  });

  it('refuses options nested deeper than maxDepth', () => {
    let nested: unknown = 1;
    for (let i = 0; i < L.maxDepth + 1; i++) nested = { x: nested };
    expectRejected(create(nested), 'PROTOCOL_ERROR');
  });
});

describe('typed encoder output is what the decoder accepts', () => {
  it('carries bad numbers from the caller as they are, so the server refuses them instead of truncating', () => {
    expectRejected(
      encodeRequest(1, 'receive', { queue: 'q', max: 2.5, waitMs: 0 }),
      'INVALID_ARGUMENT',
      'max',
    );
    expectRejected(
      encodeRequest(1, 'receive', { queue: 'q', max: -1, waitMs: 0 }),
      'INVALID_ARGUMENT',
      'max',
    );
    expectRejected(
      encodeRequest(1, 'receive', { queue: 'q', max: 1, waitMs: Number.NaN }),
      'INVALID_ARGUMENT',
      'waitMs',
    );
    const items = [{ queue: 'q', seq: 1.5, deliveryId: 1 }];
    expectRejected(encodeRequest(1, 'ack', { items }), 'INVALID_ARGUMENT', 'items[0].seq');
    const messages = [{ body, delayMs: 0.5 }];
    expectRejected(
      encodeRequest(1, 'publish', { queue: 'q', messages }),
      'INVALID_ARGUMENT',
      'messages[0].delayMs',
    );
  });

  it('encodes optional nulls as absent', () => {
    const frame = encodeRequest(1, 'receive', { queue: 'q', max: 1, waitMs: 0, visibilityTimeoutMs: null });
    expectAccepted(frame);
  });
});
