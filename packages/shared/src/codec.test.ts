/**
 * Proves that every op and every server frame survives encode → decode unchanged (property tests
 * over generated valid values), that decoded bodies are zero-copy views of the frame, and that
 * the wire layout matches docs/protocol.md byte for byte on a few hand-written examples.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRequest, encodeRequest } from './codec-request.js';
import {
  decodePush,
  decodeReply,
  decodeServerFrame,
  encodeDeliver,
  encodeError,
  encodePush,
  encodeResult,
} from './codec-server.js';
import { FlotillaError } from './errors.js';
import {
  BodyFormat,
  OP,
  type OpName,
  type PublishMessage,
  type Request,
  type RequestParams,
} from './frames.js';
import { DEFAULT_LIMITS, welcomeLimits } from './limits.js';
import { decodeMsgpack, encodeMsgpack } from './msgpack.js';
import { DEFAULT_QUEUE_OPTIONS } from './queue-options.js';
import {
  anyRequest,
  deliveredList,
  itemOutcomes,
  paramsByOp,
  publishMessage,
  queueName,
  queueStats,
  requestId,
} from './test-arbitraries.js';

/** What the decoder gives back for a message: format defaults to Bytes, absent fields stay absent. */
function normalizeMessage(m: PublishMessage): PublishMessage {
  return { ...m, format: m.format ?? BodyFormat.Bytes };
}

function expectedParams(op: OpName, params: RequestParams[OpName]): unknown {
  if (op === 'publish') {
    const p = params as RequestParams['publish'];
    return { ...p, messages: p.messages.map(normalizeMessage) };
  }
  if (op === 'hello') {
    const p = params as RequestParams['hello'];
    return { version: p.version, token: p.token ?? null, name: p.name ?? null };
  }
  return params;
}

describe('request round trip', () => {
  for (const op of Object.keys(paramsByOp) as OpName[]) {
    it(`${op}: decode(encode(x)) = x`, () => {
      fc.assert(
        fc.property(requestId, paramsByOp[op] as fc.Arbitrary<RequestParams[OpName]>, (id, params) => {
          const decoded = decodeRequest(encodeRequest(id, op, params as never));
          if (!decoded.ok) throw decoded.error;
          expect(decoded.value.id).toBe(id);
          expect(decoded.value.op).toBe(op);
          expect(decoded.value.params).toEqual(expectedParams(op, params));
        }),
        { numRuns: 60 },
      );
    });
  }

  it('any request re-encodes to the same bytes after decoding', () => {
    fc.assert(
      fc.property(anyRequest, ([id, op, params]) => {
        const bytes = encodeRequest(id, op, params as never);
        const decoded = decodeRequest(bytes);
        if (!decoded.ok) throw decoded.error;
        const again = encodeRequest(decoded.value.id, decoded.value.op, decoded.value.params as never);
        expect(again).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it('publish bodies are views of the received frame, not copies', () => {
    const body = new Uint8Array([1, 2, 3, 4]);
    const frame = encodeRequest(7, 'publish', { queue: 'q', messages: [{ body }] });
    const decoded = decodeRequest(frame);
    if (!decoded.ok || decoded.value.op !== 'publish') throw new Error('expected a publish');
    const decodedBody = decoded.value.params.messages[0]!.body;
    expect(decodedBody.buffer).toBe(frame.buffer);
    expect(decodedBody).toEqual(body);
  });

  it('accepts nil for every optional message field and integral floats for integers', () => {
    const frame = encodeMsgpack([
      0,
      5.0,
      OP.publish,
      'q',
      [[new Uint8Array([9]), null, null, null, null, null, null, 2.0]],
    ]);
    const decoded = decodeRequest(frame);
    if (!decoded.ok) throw decoded.error;
    expect(decoded.value).toMatchObject({
      id: 5,
      op: 'publish',
      params: { messages: [{ priority: 2, format: 0 }] },
    });
  });
});

describe('wire layout (docs/protocol.md examples)', () => {
  it('publish of one bytes message with a key', () => {
    const frame = encodeRequest(1, 'publish', {
      queue: 'q',
      messages: [{ body: new Uint8Array([0xab]), idempotencyKey: 'k' }],
    });
    expect(decodeMsgpack(frame)).toEqual([
      0,
      1,
      OP.publish,
      'q',
      [[new Uint8Array([0xab]), null, null, 'k']],
    ]);
    // fixarray(5) 0 1 8 fixstr"q" fixarray(1) fixarray(4) bin8(1)=ab nil nil fixstr"k"
    expect(Array.from(frame)).toEqual([
      0x95, 0x00, 0x01, 0x08, 0xa1, 0x71, 0x91, 0x94, 0xc4, 0x01, 0xab, 0xc0, 0xc0, 0xa1, 0x6b,
    ]);
  });

  it('ack items are flat triples', () => {
    const frame = encodeRequest(2, 'ack', {
      items: [
        { queue: 'a', seq: 10, deliveryId: 1 },
        { queue: 'a', seq: 11, deliveryId: 2 },
      ],
    });
    expect(decodeMsgpack(frame)).toEqual([0, 2, OP.ack, ['a', 10, 1, 'a', 11, 2]]);
  });

  it('hello omits trailing absent arguments', () => {
    expect(decodeMsgpack(encodeRequest(1, 'hello', { version: 1 }))).toEqual([0, 1, OP.hello, 1]);
    expect(decodeMsgpack(encodeRequest(1, 'hello', { version: 1, name: 'w' }))).toEqual([
      0,
      1,
      OP.hello,
      1,
      null,
      'w',
    ]);
  });

  it('results, errors and pushes', () => {
    expect(decodeMsgpack(encodeResult(3, 'publish', { seqs: [41, 42], duplicates: [1] }))).toEqual([
      1,
      3,
      OP.publish,
      [[41, 42], [1]],
    ]);
    expect(decodeMsgpack(encodeResult(4, 'ack', { failed: [{ index: 1, code: 'LEASE_EXPIRED' }] }))).toEqual([
      1,
      4,
      OP.ack,
      [1, 'LEASE_EXPIRED'],
    ]);
    const notLeader = new FlotillaError('NOT_LEADER', 'not the leader', { leaderId: 'n2', leaderUrl: null });
    expect(decodeMsgpack(encodeError(5, notLeader))).toEqual([
      2,
      5,
      'NOT_LEADER',
      'not the leader',
      { leaderId: 'n2', leaderUrl: null },
    ]);
    expect(
      decodeMsgpack(encodePush({ kind: 'goingAway', reason: 'shutdown', leaderId: 'n3', leaderUrl: null })),
    ).toEqual([4, 'shutdown', 'n3', null]);
  });
});

function roundTripResult<K extends OpName>(op: K, result: unknown): unknown {
  const decoded = decodeReply(encodeResult(9, op, result as never));
  if (!decoded.ok) throw decoded.error;
  if (decoded.value.kind !== 'result') throw new Error('expected a result');
  expect(decoded.value).toMatchObject({ id: 9, op });
  return decoded.value.result;
}

describe('reply round trip', () => {
  it('publish, receive, peek, ack/nack/extend, counts', () => {
    fc.assert(
      fc.property(
        fc.record({
          seqs: fc.array(fc.maxSafeNat(), { maxLength: 10 }),
          duplicates: fc.array(fc.nat(9), { maxLength: 3 }),
        }),
        deliveredList,
        itemOutcomes,
        fc.maxSafeNat(),
        (publish, delivered, outcomes, count) => {
          expect(roundTripResult('publish', publish)).toEqual(publish);
          expect(roundTripResult('receive', delivered)).toEqual(delivered);
          expect(roundTripResult('peek', delivered)).toEqual(delivered);
          for (const op of ['ack', 'nack', 'extend'] as const)
            expect(roundTripResult(op, outcomes)).toEqual(outcomes);
          for (const op of ['purgeQueue', 'redrive', 'subscribe'] as const)
            expect(roundTripResult(op, count)).toBe(count);
          for (const op of ['deleteQueue', 'credit', 'unsubscribe'] as const)
            expect(roundTripResult(op, null)).toBe(null);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('admin results: welcome, options, stats, list, cluster', () => {
    const welcome = {
      protocolVersion: 1,
      nodeId: 'n1',
      leaderId: 'n2',
      leaderUrl: 'ws://n2:7400/client',
      serverVersion: '0.1.0',
      limits: welcomeLimits(DEFAULT_LIMITS),
    };
    expect(roundTripResult('hello', welcome)).toEqual(welcome);
    expect(roundTripResult('createQueue', DEFAULT_QUEUE_OPTIONS)).toEqual(DEFAULT_QUEUE_OPTIONS);
    expect(roundTripResult('updateQueue', DEFAULT_QUEUE_OPTIONS)).toEqual(DEFAULT_QUEUE_OPTIONS);
    fc.assert(
      fc.property(fc.array(queueStats, { maxLength: 3 }), (stats) => {
        expect(roundTripResult('listQueues', stats)).toEqual(stats);
        for (const one of stats) expect(roundTripResult('queueStats', one)).toEqual(one);
      }),
      { numRuns: 30 },
    );
    const cluster = {
      nodeId: 'n1',
      leaderId: null,
      term: 7,
      commitIndex: 100,
      appliedIndex: 99,
      nodes: [{ id: 'n1', url: null, role: 'follower', reachable: true, matchIndex: null }],
      extra: { wal: 'ok' },
    };
    expect(roundTripResult('cluster', cluster)).toEqual(cluster);
  });

  it('errors keep code, message and details; id 0 is allowed', () => {
    fc.assert(
      fc.property(
        fc.nat(0xffff_ffff),
        fc.constantFrom(...(['NOT_LEADER', 'TIMEOUT', 'QUEUE_FULL', 'INVALID_ARGUMENT'] as const)),
        fc.string(),
        fc.dictionary(fc.string({ minLength: 1 }), fc.oneof(fc.string(), fc.integer(), fc.constant(null))),
        (id, code, message, details) => {
          const decoded = decodeReply(encodeError(id, new FlotillaError(code, message, details)));
          if (!decoded.ok || decoded.value.kind !== 'error') throw new Error('expected an error reply');
          expect(decoded.value.id).toBe(id);
          expect(decoded.value.error).toBeInstanceOf(FlotillaError);
          expect(decoded.value.error.code).toBe(code);
          expect(decoded.value.error.message).toBe(message);
          expect(decoded.value.error.details).toEqual(details);
        },
      ),
    );
  });

  it('an unknown error code from a newer server reads as INTERNAL with originalCode', () => {
    const frame = encodeMsgpack([2, 1, 'SHINY_NEW_CODE', 'm', null]);
    const decoded = decodeReply(frame);
    if (!decoded.ok || decoded.value.kind !== 'error') throw new Error('expected an error reply');
    expect(decoded.value.error.code).toBe('INTERNAL');
    expect(decoded.value.error.details).toEqual({ originalCode: 'SHINY_NEW_CODE' });
  });

  it('error details that cannot be encoded are dropped, not thrown', () => {
    const error = new FlotillaError('INTERNAL', 'boom', { fn: () => 1 });
    expect(decodeMsgpack(encodeError(1, error))).toEqual([2, 1, 'INTERNAL', 'boom', null]);
  });
});

describe('push round trip', () => {
  it('deliver, goingAway, subscriptionEnded', () => {
    fc.assert(
      fc.property(fc.nat(0xffff_ffff), queueName, deliveredList, (subId, queue, list) => {
        const messages = list.map((m) => ({ ...m, queue }));
        const decoded = decodePush(encodeDeliver(subId, queue, messages));
        if (!decoded.ok) throw decoded.error;
        expect(decoded.value).toEqual({ kind: 'deliver', subId, queue, messages });
      }),
      { numRuns: 100 },
    );
    const away = {
      kind: 'goingAway' as const,
      reason: 'leadership transferred',
      leaderId: 'n2',
      leaderUrl: 'ws://x',
    };
    expect(decodePush(encodePush(away))).toEqual({ ok: true, value: away });
    const ended = {
      kind: 'subscriptionEnded' as const,
      subId: 3,
      code: 'QUEUE_NOT_FOUND' as const,
      message: 'deleted',
    };
    expect(decodePush(encodePush(ended))).toEqual({ ok: true, value: ended });
  });

  it('decodeReply refuses pushes and decodePush refuses replies', () => {
    const push = encodePush({ kind: 'goingAway', reason: 'r', leaderId: null, leaderUrl: null });
    expect(decodeReply(push)).toMatchObject({ ok: false, error: { code: 'PROTOCOL_ERROR' } });
    expect(decodePush(encodeResult(1, 'credit', null))).toMatchObject({
      ok: false,
      error: { code: 'PROTOCOL_ERROR' },
    });
    expect(decodeServerFrame(push).ok).toBe(true);
  });

  it('delivered bodies are views of the frame', () => {
    const frame = encodeDeliver(1, 'q', [
      {
        seq: 1,
        deliveryId: 1,
        body: new Uint8Array([5, 6]),
        format: 0,
        headers: null,
        group: null,
        priority: 0,
        deliveryCount: 1,
        publishedAtMs: 1,
        leaseDeadlineMs: 2,
      },
    ]);
    const decoded = decodePush(frame);
    if (!decoded.ok || decoded.value.kind !== 'deliver') throw new Error('expected deliver');
    expect(decoded.value.messages[0]!.body.buffer).toBe(frame.buffer);
  });
});

describe('dead-letter history on delivered messages', () => {
  const base = {
    seq: 4,
    deliveryId: 9,
    body: new Uint8Array([1]),
    format: BodyFormat.Bytes,
    headers: null,
    group: null,
    priority: 0,
    deliveryCount: 1,
    publishedAtMs: 1000,
    leaseDeadlineMs: 2000,
  };
  const history = { queue: 'emails', seq: 17, deliveryCount: 5, reason: 'max-deliveries', timeMs: 1500 };

  function wireMessages(frame: Uint8Array): unknown[][] {
    return (decodeMsgpack(frame) as [number, number, string, unknown[][]])[3];
  }

  it('is an 11th element only on dead-lettered messages', () => {
    const frame = encodeDeliver(1, 'emails.dlq', [base, { ...base, seq: 5, deadLetter: history }]);
    const [plain, moved] = wireMessages(frame);
    expect(plain).toHaveLength(10);
    expect(moved).toHaveLength(11);
    expect(moved![10]).toEqual(['emails', 17, 5, 'max-deliveries', 1500]);
    const decoded = decodePush(frame);
    if (!decoded.ok || decoded.value.kind !== 'deliver') throw new Error('expected deliver');
    expect(decoded.value.messages.map((m) => m.deadLetter)).toEqual([null, history]);
  });

  it('elements and reasons a newer server adds are read past, not refused', () => {
    const newer = [
      4,
      9,
      new Uint8Array([1]),
      0,
      null,
      null,
      0,
      1,
      1000,
      2000,
      ['q', 1, 2, 'poisoned', 3, 'x'],
      'more',
    ];
    const frame = encodeMsgpack([3, 1, 'q.dlq', [newer, [...newer.slice(0, 10), null]]]);
    const decoded = decodePush(frame);
    if (!decoded.ok || decoded.value.kind !== 'deliver') throw new Error('expected deliver');
    expect(decoded.value.messages.map((m) => m.deadLetter)).toEqual([
      { queue: 'q', seq: 1, deliveryCount: 2, reason: 'poisoned', timeMs: 3 },
      null,
    ]);
  });

  it('a malformed history is a typed error naming the field', () => {
    const bad = [4, 9, new Uint8Array([1]), 0, null, null, 0, 1, 1000, 2000, ['q', 1]];
    const decoded = decodePush(encodeMsgpack([3, 1, 'q.dlq', [bad]]));
    expect(decoded).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT', field: 'deadLetter' } });
  });
});

describe('publish generator sanity', () => {
  it('generates messages the decoder accepts', () => {
    fc.assert(
      fc.property(publishMessage, (m) => {
        const decoded = decodeRequest(encodeRequest(1, 'publish', { queue: 'q', messages: [m] }));
        expect(decoded.ok).toBe(true);
        return (decoded as { value: Request }).value.op === 'publish';
      }),
      { numRuns: 50 },
    );
  });
});
