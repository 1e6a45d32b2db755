/**
 * Message bodies for the workloads: 1 KiB of random bytes, each body a different window of one
 * random pool made before timing, with the message id in bytes 0..3 (so a drain can check loss
 * and duplicates end to end) and, for latency workloads, the publisher's clock in bytes 8..15.
 */
import { randomFillSync } from 'node:crypto';

export const PAYLOAD_BYTES = 1024;
const ID_OFFSET = 0;
const SENT_AT_OFFSET = 8;
/** Size of the random pool; bodies start at different offsets in it, so they differ beyond the id. */
const POOL_BYTES = 256 * 1024;

export class PayloadFactory {
  private readonly pool = randomFillSync(new Uint8Array(POOL_BYTES + PAYLOAD_BYTES));

  /** A fresh 1 KiB body carrying `id`. */
  body(id: number): Uint8Array {
    const offset = (id * 977) % POOL_BYTES;
    const body = this.pool.slice(offset, offset + PAYLOAD_BYTES);
    new DataView(body.buffer).setUint32(ID_OFFSET, id >>> 0);
    return body;
  }

  /** A fresh body carrying `id` and the sender's `performance.now()` at the time of the call. */
  timedBody(id: number): Uint8Array {
    const body = this.body(id);
    new DataView(body.buffer).setFloat64(SENT_AT_OFFSET, performance.now());
    return body;
  }

  /** `count` bodies made up front, so building them is not timed. */
  prebuilt(count: number, firstId = 0): Uint8Array[] {
    return Array.from({ length: count }, (_, i) => this.body(firstId + i));
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The id a body was made with. */
export function idOf(bytes: Uint8Array): number {
  return view(bytes).getUint32(ID_OFFSET);
}

/** The sender's `performance.now()` stamped by `timedBody`. */
export function sentAtOf(bytes: Uint8Array): number {
  return view(bytes).getFloat64(SENT_AT_OFFSET);
}
