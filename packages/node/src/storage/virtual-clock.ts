/**
 * A minimal virtual-time event queue and seeded random source, enough to drive `MemDisk` in the
 * storage tests and benchmarks without real timers. The Raft simulator has its own richer event
 * loop; anything with a `schedule(delayMs, fn)` works with `MemDisk`.
 */

interface ScheduledEvent {
  atMs: number;
  seq: number;
  fn: () => void;
}

export class VirtualClock {
  nowMs = 0;
  private heap: ScheduledEvent[] = [];
  private seq = 0;

  /** Queue `fn` at now + `delayMs`; ties run in scheduling order. */
  readonly schedule = (delayMs: number, fn: () => void): void => {
    this.push({ atMs: this.nowMs + Math.max(0, delayMs), seq: this.seq++, fn });
  };

  get pending(): number {
    return this.heap.length;
  }

  /** Run the earliest event; false when there is none. */
  runNext(): boolean {
    const event = this.pop();
    if (!event) return false;
    this.nowMs = event.atMs;
    event.fn();
    return true;
  }

  /** Run up to `count` events; returns how many ran. */
  runSteps(count: number): number {
    let ran = 0;
    while (ran < count && this.runNext()) ran++;
    return ran;
  }

  /** Run events until none is left; throws past `maxEvents` (a livelock in the code under test). */
  runUntilIdle(maxEvents = 10_000_000): void {
    for (let i = 0; i < maxEvents; i++) if (!this.runNext()) return;
    throw new Error(`virtual clock still busy after ${maxEvents} events`);
  }

  private push(event: ScheduledEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): ScheduledEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || !last) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return top;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}

/** Small fast PRNG (mulberry32): uniform in [0, 1), fully determined by `seed`. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
