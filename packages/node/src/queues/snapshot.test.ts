/**
 * Proves snapshots: restore(snapshot(s)) has the same digest as s and behaves the same on the
 * commands that follow; chunks stay near their size bound; the bytes restore however they are cut
 * into pieces; a snapshot keeps describing the moment it was taken while later entries are applied;
 * corrupt input raises SnapshotFormatError only.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Fnv1a64, SnapshotFormatError, SnapshotLoader } from './snapshot.js';
import { QueueStateMachine } from './state-machine.js';
import { bytes, Driver, refOf } from './test-support.js';
import type { Command } from './types.js';

/** A state with something in every corner: groups, priorities, delays, retries, leases, DLQ history, keys. */
function busyState(): Driver {
  const d = new Driver();
  d.create('dlq');
  d.create('jobs', {
    maxDeliveries: 2,
    deadLetterQueue: 'dlq',
    priorityLevels: 3,
    retry: { backoff: 'exponential', delayMs: 100, maxDelayMs: 1_000 },
  });
  d.publish(
    'jobs',
    { body: bytes('g1'), group: 'g', headers: { trace: 't1' } },
    { body: bytes('g2'), group: 'g' },
    { body: bytes('h'), group: 'h', priority: 2 },
    { body: bytes('late'), delayMs: 5_000, ttlMs: 60_000 },
    { body: bytes('keyed'), idempotencyKey: 'key-1' },
    { body: new Uint8Array(3000).fill(7) },
    { body: bytes('"json"'), format: 3 },
  );
  const leased = d.deliver('jobs', 3, 'n1/1');
  d.nack('jobs', leased.slice(1, 2));
  d.nack('jobs', d.deliver('jobs', 1, 'n2/5'));
  d.advance(50);
  return d;
}

const followUps: Command[] = [
  { op: 'deliver', queue: 'jobs', consumerId: 'n3/1', max: 10 },
  { op: 'tick' },
  {
    op: 'publish',
    queue: 'jobs',
    messages: [{ body: bytes('keyed'), idempotencyKey: 'key-1' }, { body: bytes('new') }],
  },
  { op: 'releaseAllExcept', ownerPrefix: 'n3/' },
  { op: 'deliver', queue: 'jobs', consumerId: 'n3/1', max: 10 },
  { op: 'deliver', queue: 'dlq', consumerId: 'n3/2', max: 10 },
  { op: 'redrive', dlq: 'dlq', target: 'jobs', max: 5 },
];

/** The chunks as one buffer: the bytes of the snapshot file. */
function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Feeds `whole` to a loader in pieces of `pieceBytes`, reusing (zeroing) each piece after the push. */
function restoreInPieces(whole: Uint8Array, pieceBytes: number): QueueStateMachine {
  const loader = new SnapshotLoader();
  for (let at = 0; at < whole.byteLength; at += pieceBytes) {
    const piece = whole.slice(at, at + pieceBytes);
    loader.push(piece);
    piece.fill(0);
  }
  return loader.finish();
}

function replay(sm: QueueStateMachine, startMs: number) {
  return followUps.map((command, i) => sm.apply({ timeMs: startMs + i * 700 }, command));
}

describe('snapshot and restore', () => {
  it('restores an equal state that behaves the same afterwards', () => {
    const d = busyState();
    const restored = QueueStateMachine.restore(d.sm.snapshot(512));
    expect(restored.digest()).toBe(d.sm.digest());
    for (const name of d.sm.queueNames()) expect(restored.stats(name)).toEqual(d.sm.stats(name));
    expect(restored.nextDeadline()).toBe(d.sm.nextDeadline());
    expect(replay(restored, d.nowMs)).toEqual(replay(d.sm, d.nowMs));
    expect(restored.digest()).toBe(d.sm.digest());
  });

  it('cuts chunks near the requested size, a large message alone in its chunk', () => {
    const d = busyState();
    d.publish('jobs', ...Array.from({ length: 40 }, (_, i) => `filler message number ${i}`));
    const chunks = [...d.sm.snapshot(256)];
    expect(chunks.length).toBeGreaterThan(5);
    const biggest = Math.max(...chunks.map((c) => c.byteLength));
    expect(biggest).toBeGreaterThan(3000);
    expect(biggest).toBeLessThan(3000 + 256 + 200);
    expect(chunks.filter((c) => c.byteLength > 256 + 200)).toHaveLength(1);
  });

  it('keeps describing the moment it was taken while later commands are applied', () => {
    const d = busyState();
    const before = d.sm.digest();
    const snapshot = d.sm.snapshot(128);
    const chunks = [snapshot.nextChunk() as Uint8Array];
    replay(d.sm, d.nowMs);
    d.ok({ op: 'purgeQueue', queue: 'jobs' });
    for (let c = snapshot.nextChunk(); c !== null; c = snapshot.nextChunk()) chunks.push(c);
    expect(QueueStateMachine.restore(chunks).digest()).toBe(before);
  });

  it('restores leases so acks of restored deliveries work and their consumers can be released', () => {
    const d = new Driver();
    d.create('q');
    d.publish('q', 'a', 'b');
    const [a, b] = d.deliver('q', 2, 'n1/1');
    const restored = new Driver(QueueStateMachine.restore(d.sm.snapshot()));
    restored.nowMs = d.nowMs;
    restored.ack('q', a!);
    expect(restored.ok({ op: 'release', consumerIds: ['n1/1'] }).released).toBe(1);
    expect(restored.deliver('q')[0]).toMatchObject({
      seq: b!.seq,
      deliveryCount: 2,
      deliveryId: b!.deliveryId + 1,
    });
    expect(restored.ok({ op: 'ack', items: [refOf('q', b!)] }).results[0]).toMatchObject({
      code: 'LEASE_EXPIRED',
    });
  });

  it('restores from the same bytes cut anywhere, as storage reads them back in fixed-size pieces', () => {
    // Storage hands the snapshot file back in pieces of its own size, not at the writer's chunk
    // boundaries: items (a 1 MiB body among them) are cut in the middle, even in their headers.
    const small = busyState();
    const big = busyState();
    big.publish('jobs', { body: new Uint8Array(1024 * 1024).fill(3) }, 'after the big one');
    const cases: [Driver, number[]][] = [
      [small, Array.from({ length: 40 }, (_, i) => i + 1)],
      [big, [4095, 65_536, 1024 * 1024, 1024 * 1024 + 1]],
    ];
    for (const [d, pieceSizes] of cases) {
      const whole = concat([...d.sm.snapshot(4096)]);
      for (const pieceBytes of pieceSizes) {
        expect(restoreInPieces(whole, pieceBytes).digest(), `pieces of ${pieceBytes} bytes`).toBe(
          d.sm.digest(),
        );
      }
    }
    const cut = new SnapshotLoader();
    cut.push(concat([...big.sm.snapshot()]).subarray(0, 600_000));
    expect(() => cut.finish()).toThrow(/inside an item/);
  });

  it('copies bodies out of the chunks', () => {
    const d = busyState();
    const chunks = [...d.sm.snapshot()];
    const restored = QueueStateMachine.restore(chunks);
    for (const chunk of chunks) chunk.fill(0);
    expect(restored.digest()).toBe(d.sm.digest());
  });

  it('digest differs when the state differs and accepts another hasher', () => {
    const a = busyState();
    const b = busyState();
    expect(a.sm.digest()).toBe(b.sm.digest());
    b.publish('jobs', 'one more');
    expect(a.sm.digest()).not.toBe(b.sm.digest());
    expect(a.sm.digest(createHash('sha256'))).toMatch(/^[0-9a-f]{64}$/);
  });

  it('raises SnapshotFormatError for truncated, reordered or corrupted streams', () => {
    const chunks = [...busyState().sm.snapshot(256)];
    const attempts: Uint8Array[][] = [
      chunks.slice(0, -1),
      chunks.slice(1),
      [chunks[0] as Uint8Array, ...chunks.slice(2)],
      [...chunks, chunks.at(-1) as Uint8Array],
      [new Uint8Array([0xc1])],
    ];
    for (let i = 0; i < chunks.length; i++) {
      const broken = chunks.map((c) => c.slice());
      const target = broken[i] as Uint8Array;
      const at = Math.floor(target.length / 2);
      target[at] = (target[at] as number) ^ 0xff;
      attempts.push(broken);
    }
    for (const attempt of attempts) {
      let outcome: unknown = 'restored';
      try {
        QueueStateMachine.restore(attempt);
      } catch (error) {
        outcome = error;
      }
      // A flipped byte inside a body or a number may still be a valid (different) snapshot.
      if (outcome !== 'restored') expect(outcome).toBeInstanceOf(SnapshotFormatError);
    }
    expect(() => QueueStateMachine.restore(chunks.slice(0, -1))).toThrow(SnapshotFormatError);
    expect(() => new SnapshotLoader().finish()).toThrow(/end marker/);
  });

  it('hashes FNV-1a 64 like the reference vectors', () => {
    expect(new Fnv1a64().update(new Uint8Array()).digest('hex')).toBe('cbf29ce484222325');
    expect(new Fnv1a64().update(bytes('a')).digest('hex')).toBe('af63dc4c8601ec8c');
    expect(new Fnv1a64().update(bytes('foobar')).digest('hex')).toBe('85944171f73967e8');
  });
});
