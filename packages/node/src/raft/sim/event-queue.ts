/**
 * Virtual-time event queue: a binary min-heap ordered by (time, insertion sequence), so events at
 * the same instant run in the order they were scheduled and every run is reproducible.
 */

interface ScheduledEvent {
  time: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private heap: ScheduledEvent[] = [];
  private seq = 0;
  /** Current virtual time in milliseconds. */
  now = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Runs `run` after `delayMs` (>= 0) of virtual time. */
  schedule(delayMs: number, run: () => void): void {
    const event = { time: this.now + Math.max(0, delayMs), seq: this.seq++, run };
    this.heap.push(event);
    this.siftUp(this.heap.length - 1);
  }

  /** Runs the earliest event; returns false when there is none. */
  runNext(): boolean {
    const top = this.heap[0];
    if (top === undefined) return false;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    this.now = top.time;
    top.run();
    return true;
  }

  private less(a: ScheduledEvent, b: ScheduledEvent): boolean {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i]!, heap[parent]!)) return;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && this.less(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && this.less(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  }
}
