/**
 * A binary min-heap that remembers where each item sits, so an item can be removed or re-keyed in
 * O(log n) without lazy tombstones. The queue state machine keeps one per timer kind (delays,
 * leases, TTLs) and per delivery order; a message can be in several heaps at once, so the
 * position is stored through accessor functions (one position field per heap kind on the record).
 *
 * The ordering function must be a strict total order (ties broken by a unique key such as `seq`)
 * so that the order items come out in depends only on their keys, never on the heap's history:
 * replicas and restored snapshots build different internal layouts yet must behave identically.
 */

/** Where an item sits in a heap; -1 when it is in none. */
export const NOT_IN_HEAP = -1;

export interface HeapSlot<T> {
  /** True when `a` must come out before `b`. */
  less(a: T, b: T): boolean;
  getPos(item: T): number;
  setPos(item: T, pos: number): void;
}

export class IndexedHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly slot: HeapSlot<T>) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  has(item: T): boolean {
    const pos = this.slot.getPos(item);
    return pos !== NOT_IN_HEAP && this.items[pos] === item;
  }

  push(item: T): void {
    const pos = this.slot.getPos(item);
    if (pos !== NOT_IN_HEAP) throw new Error(`heap invariant: item already at position ${pos}`);
    this.items.push(item);
    this.siftUp(this.items.length - 1);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top === undefined) return undefined;
    this.removeAt(0);
    return top;
  }

  /** Removes `item`; a no-op when it is not in this heap. */
  remove(item: T): boolean {
    if (!this.has(item)) return false;
    this.removeAt(this.slot.getPos(item));
    return true;
  }

  /** Restores order after `item`'s key changed in place. */
  update(item: T): void {
    const pos = this.slot.getPos(item);
    if (pos === NOT_IN_HEAP || this.items[pos] !== item) {
      throw new Error(`heap invariant: update of an item not in this heap (pos ${pos})`);
    }
    this.siftUp(pos);
    this.siftDown(this.slot.getPos(item));
  }

  /** Empties the heap, marking every item as out of it. */
  clear(): void {
    for (const item of this.items) this.slot.setPos(item, NOT_IN_HEAP);
    this.items.length = 0;
  }

  /** Items in heap layout order (not sorted); for bulk scans that do not care about order. */
  values(): readonly T[] {
    return this.items;
  }

  private removeAt(pos: number): void {
    const items = this.items;
    const removed = items[pos] as T;
    const last = items.pop() as T;
    this.slot.setPos(removed, NOT_IN_HEAP);
    if (pos === items.length) return;
    items[pos] = last;
    this.slot.setPos(last, pos);
    this.siftUp(pos);
    this.siftDown(this.slot.getPos(last));
  }

  private siftUp(start: number): void {
    const items = this.items;
    const item = items[start] as T;
    let pos = start;
    while (pos > 0) {
      const parentPos = (pos - 1) >> 1;
      const parent = items[parentPos] as T;
      if (!this.slot.less(item, parent)) break;
      items[pos] = parent;
      this.slot.setPos(parent, pos);
      pos = parentPos;
    }
    items[pos] = item;
    this.slot.setPos(item, pos);
  }

  private siftDown(start: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[start] as T;
    let pos = start;
    for (;;) {
      const left = 2 * pos + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this.slot.less(items[right] as T, items[left] as T)) child = right;
      const childItem = items[child] as T;
      if (!this.slot.less(childItem, item)) break;
      items[pos] = childItem;
      this.slot.setPos(childItem, pos);
      pos = child;
    }
    items[pos] = item;
    this.slot.setPos(item, pos);
  }
}
