/**
 * Proves the indexed heap pops in key order whatever mix of pushes, removals and re-keys came
 * before, and that positions stay consistent (the state machine's O(log n) removals rely on it).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IndexedHeap, NOT_IN_HEAP } from './heap.js';

interface Item {
  id: number;
  key: number;
  pos: number;
}

function newHeap() {
  return new IndexedHeap<Item>({
    less: (a, b) => a.key < b.key || (a.key === b.key && a.id < b.id),
    getPos: (item) => item.pos,
    setPos: (item, pos) => {
      item.pos = pos;
    },
  });
}

const sorted = (items: Item[]) => [...items].sort((a, b) => a.key - b.key || a.id - b.id).map((i) => i.id);

describe('IndexedHeap', () => {
  it('pops in key order after random pushes, removals and updates', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), key: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({
        kind: fc.constant('update' as const),
        pick: fc.nat(),
        key: fc.integer({ min: 0, max: 50 }),
      }),
      fc.record({ kind: fc.constant('pop' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const heap = newHeap();
        let live: Item[] = [];
        let nextId = 0;
        for (const o of ops) {
          if (o.kind === 'push') {
            const item = { id: nextId++, key: o.key, pos: NOT_IN_HEAP };
            heap.push(item);
            live.push(item);
          } else if (o.kind === 'pop') {
            const top = heap.pop();
            expect(top?.id).toBe(sorted(live)[0]);
            live = live.filter((i) => i !== top);
            if (top) expect(top.pos).toBe(NOT_IN_HEAP);
          } else if (live.length > 0) {
            const item = live[o.pick % live.length] as Item;
            if (o.kind === 'remove') {
              expect(heap.remove(item)).toBe(true);
              expect(heap.remove(item)).toBe(false);
              live = live.filter((i) => i !== item);
            } else {
              item.key = o.key;
              heap.update(item);
            }
          }
          expect(heap.size).toBe(live.length);
          for (const item of live) expect(heap.has(item)).toBe(true);
        }
        const drained: number[] = [];
        for (let top = heap.pop(); top !== undefined; top = heap.pop()) drained.push(top.id);
        expect(drained).toEqual(sorted(live));
      }),
    );
  });

  it('refuses to hold an item twice or to update an item it does not hold', () => {
    const heap = newHeap();
    const item = { id: 1, key: 1, pos: NOT_IN_HEAP };
    heap.push(item);
    expect(() => heap.push(item)).toThrow(/already at position 0/);
    const stranger = { id: 2, key: 2, pos: NOT_IN_HEAP };
    expect(() => heap.update(stranger)).toThrow(/not in this heap/);
    expect(heap.remove(stranger)).toBe(false);
  });

  it('clear marks every item as out of the heap', () => {
    const heap = newHeap();
    const items = [3, 1, 2].map((key, id) => ({ id, key, pos: NOT_IN_HEAP }));
    for (const item of items) heap.push(item);
    heap.clear();
    expect(heap.size).toBe(0);
    expect(items.every((i) => i.pos === NOT_IN_HEAP)).toBe(true);
  });
});
