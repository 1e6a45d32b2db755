/**
 * A trivial deterministic state machine for driver tests: the list of applied payloads (as text)
 * with their indexes. Its snapshot is that list in length-prefixed msgpack records of up to 64 items,
 * one record per chunk pulled; restoring replaces the list. Comparing two replicas' lists compares their applied prefixes.
 */
import { decodeMsgpack, encodeMsgpack } from '@flotilla/shared';
import type { AppliedEntry, ReplicatedStateMachine, SnapshotSource } from '../types.js';

const ITEMS_PER_CHUNK = 64;
const decoder = new TextDecoder();

export interface ListItem {
  index: number;
  text: string;
}

export class ListMachine implements ReplicatedStateMachine {
  items: ListItem[] = [];
  lastIndex = 0;
  /** Index of every snapshot restored, in order. */
  readonly restores: number[] = [];

  apply(entry: AppliedEntry): void {
    if (entry.index <= this.lastIndex)
      throw new Error(`entry ${entry.index} applied after ${this.lastIndex}`);
    this.lastIndex = entry.index;
    this.items.push({ index: entry.index, text: decoder.decode(entry.data) });
  }

  snapshot(): SnapshotSource {
    const frozen = this.items.slice();
    let at = 0;
    return {
      index: this.lastIndex,
      next: () => {
        if (at >= frozen.length) return null;
        const record = encodeMsgpack(
          frozen.slice(at, at + ITEMS_PER_CHUNK).map((item) => [item.index, item.text]),
        );
        at += ITEMS_PER_CHUNK;
        const chunk = new Uint8Array(4 + record.length);
        new DataView(chunk.buffer).setUint32(0, record.length);
        chunk.set(record, 4);
        return chunk;
      },
    };
  }

  async restore(chunks: AsyncIterable<Uint8Array>, index: number): Promise<void> {
    const items: ListItem[] = [];
    // Chunks arrive as the reader cuts the file, not as they were written: decode the whole body.
    const parts: Uint8Array[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    const body = Buffer.concat(parts);
    for (let offset = 0; offset < body.length; ) {
      const length = body.readUInt32BE(offset);
      const record = decodeMsgpack(body.subarray(offset + 4, offset + 4 + length)) as [number, string][];
      for (const [i, text] of record) items.push({ index: i, text });
      offset += 4 + length;
    }
    this.items = items;
    this.lastIndex = index;
    this.restores.push(index);
  }

  texts(): string[] {
    return this.items.map((item) => item.text);
  }
}
