/**
 * One timer structure per node instead of a `setTimeout` per lease, long-poll or request: deadlines
 * go into a binary min-heap and a single Node timer is armed for the earliest one. Cancelling is O(1)
 * (the entry is marked and skipped when it reaches the top).
 */

export interface TimerHandle {
  readonly deadlineMs: number;
  cancel(): void;
}

interface TimerEntry extends TimerHandle {
  fn: () => void;
  cancelled: boolean;
  seq: number;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class TimerWheel {
  private heap: TimerEntry[] = [];
  private armedFor = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  private closed = false;

  constructor(private readonly clock: Clock = systemClock) {}

  /** Run `fn` once at or after `deadlineMs` (wall clock ms). */
  at(deadlineMs: number, fn: () => void): TimerHandle {
    const entry: TimerEntry = {
      deadlineMs,
      fn,
      cancelled: false,
      seq: this.seq++,
      cancel: () => {
        entry.cancelled = true;
      },
    };
    this.push(entry);
    this.arm();
    return entry;
  }

  /** Run `fn` once after `delayMs`. */
  after(delayMs: number, fn: () => void): TimerHandle {
    return this.at(this.clock.now() + delayMs, fn);
  }

  get size(): number {
    return this.heap.length;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.heap = [];
  }

  private arm(): void {
    if (this.closed) return;
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    const next = this.heap[0];
    if (!next) return;
    if (next.deadlineMs >= this.armedFor && this.timer) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = next.deadlineMs;
    this.timer = setTimeout(this.fire, Math.max(0, next.deadlineMs - this.clock.now()));
    this.timer.unref?.();
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    while (this.heap.length > 0 && this.heap[0]!.deadlineMs <= now) {
      const entry = this.pop();
      if (!entry.cancelled) entry.fn();
      if (this.closed) return;
    }
    this.arm();
  };

  private less(a: TimerEntry, b: TimerEntry): boolean {
    return a.deadlineMs < b.deadlineMs || (a.deadlineMs === b.deadlineMs && a.seq < b.seq);
  }

  private push(entry: TimerEntry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): TimerEntry {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
