/**
 * Proves that log entries and snapshots written by earlier builds still decode to the same
 * commands and the same state. `fixtures/formats-v1.json` holds bytes written before the queue
 * formats moved onto the shared msgpack codec, with what they decoded to then (commands, stats and
 * the state digest). Replicas compare digests, so the state must not only be equal: today's code
 * must write the very same bytes for it, which is checked too.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from './commands.js';
import { QueueStateMachine } from './state-machine.js';

interface Fixture {
  batchHex: string;
  batch: unknown;
  snapshotHex: string;
  snapshotDigest: string;
  stats: unknown[];
}

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/formats-v1.json', import.meta.url), 'utf8'),
) as Fixture;
const batchBytes = fromHex(fixture.batchHex);
const snapshotBytes = fromHex(fixture.snapshotHex);

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** The fixture's JSON form of decoded values: bytes as `{ $bin: hex }`, undefined members left out. */
function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bin: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = normalise(item);
    return out;
  }
  return value;
}

function restore(pieceBytes: number): QueueStateMachine {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < snapshotBytes.length; at += pieceBytes) {
    pieces.push(snapshotBytes.slice(at, at + pieceBytes));
  }
  return QueueStateMachine.restore(pieces);
}

describe('formats written by earlier builds', () => {
  it('an old log entry decodes to the same commands, and encodes back to the same bytes', () => {
    const decoded = decodeBatch(batchBytes);
    expect(normalise(decoded)).toEqual(fixture.batch);
    expect(decoded.commands.some((c) => c.op === 'invalid')).toBe(false);
    expect(Buffer.from(encodeBatch(decoded.timeMs, decoded.commands))).toEqual(Buffer.from(batchBytes));
  });

  it('an old snapshot restores to the same state and digest, and is written again byte for byte', () => {
    const sm = restore(snapshotBytes.length);
    expect(sm.digest()).toBe(fixture.snapshotDigest);
    expect(sm.queueNames().map((name) => sm.stats(name))).toEqual(fixture.stats);
    const again = Buffer.concat([...sm.snapshot()].map((chunk) => Buffer.from(chunk)));
    expect(again).toEqual(Buffer.from(snapshotBytes));
  });

  it('an old snapshot read back in small pieces gives the same digest', () => {
    for (const pieceBytes of [1, 7, 64]) expect(restore(pieceBytes).digest()).toBe(fixture.snapshotDigest);
  });
});
