/**
 * Throughput of the hot frames' codecs (publish, ack, deliver, publish result) on 100-message
 * frames. Run: `npx tsx packages/shared/bench/codec-bench.ts`. Figures move with machine load:
 * compare runs on a quiet machine, and profile with `node --cpu-prof` before optimising.
 */

import {
  type DeliveryFields,
  decodeReply,
  decodeRequest,
  decodeServerFrame,
  encodeDeliver,
  encodeRequest,
  encodeResult,
  type PublishMessage,
} from '../src/index.js';

const BATCH = 100;
const WARMUP_ROUNDS = 2_000;
const ROUNDS = 20_000;

function bench(name: string, run: () => void): void {
  for (let i = 0; i < WARMUP_ROUNDS; i++) run();
  const start = performance.now();
  for (let i = 0; i < ROUNDS; i++) run();
  const elapsedMs = performance.now() - start;
  const messagesPerSecond = (ROUNDS * BATCH * 1000) / elapsedMs;
  console.log(`${name.padEnd(34)} ${(messagesPerSecond / 1e6).toFixed(2)} M messages/s`);
}

function mustDecode(result: { ok: boolean; error?: Error }): void {
  if (!result.ok) throw result.error;
}

const body = new Uint8Array(256).fill(7);
let counter = 0;
/** Frames with unique idempotency keys and header values, as real traffic has. */
const publishFrames = Array.from({ length: 200 }, () => {
  const messages: PublishMessage[] = Array.from({ length: BATCH }, () => ({
    body,
    idempotencyKey: crypto.randomUUID(),
    headers: { trace: `t${counter++}` },
  }));
  return encodeRequest(1, 'publish', { queue: 'emails', messages });
});
const bareMessages: PublishMessage[] = Array.from({ length: BATCH }, () => ({ body }));
const items = Array.from({ length: BATCH }, (_, i) => ({ queue: 'emails', seq: 1000 + i, deliveryId: 1 }));
const ackFrame = encodeRequest(2, 'ack', { items });
const delivered: DeliveryFields[] = Array.from({ length: BATCH }, (_, i) => ({
  seq: 1000 + i,
  deliveryId: 1,
  body,
  format: 0,
  headers: null,
  group: null,
  priority: 0,
  deliveryCount: 1,
  publishedAtMs: 1_767_225_600_000,
  leaseDeadlineMs: 1_767_225_630_000,
}));
const deliverFrame = encodeDeliver(1, 'emails', delivered);
const seqs = Array.from({ length: BATCH }, (_, i) => 1000 + i);
const resultFrame = encodeResult(1, 'publish', { seqs, duplicates: [] });

console.log(`publish frame: ${publishFrames[0]!.length} bytes for ${BATCH} messages of ${body.length} bytes`);
bench('encode publish (bodies only)', () =>
  encodeRequest(1, 'publish', { queue: 'emails', messages: bareMessages }),
);
let frameIndex = 0;
bench('decode publish (keys + headers)', () => mustDecode(decodeRequest(publishFrames[frameIndex++ % 200]!)));
bench('encode ack', () => encodeRequest(2, 'ack', { items }));
bench('decode ack', () => mustDecode(decodeRequest(ackFrame)));
bench('encode deliver', () => encodeDeliver(1, 'emails', delivered));
bench('decode deliver', () => mustDecode(decodeServerFrame(deliverFrame)));
bench('encode publish result', () => encodeResult(1, 'publish', { seqs, duplicates: [] }));
bench('decode publish result', () => mustDecode(decodeReply(resultFrame)));
