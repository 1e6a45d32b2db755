/**
 * Bounded window of AppendEntries messages sent to one follower and not yet acknowledged, used for
 * pipelining in the replicate state. A ring of (last index, bytes) per message; acknowledgements
 * free every message up to the acknowledged index.
 */
import { invariantFailed } from './errors.js';

export class Inflights {
  private readonly lastIndexes: number[];
  private readonly sizes: number[];
  private head = 0;
  private countNow = 0;
  private bytesNow = 0;

  constructor(
    private readonly countMax: number,
    /** 0 means no byte limit. */
    private readonly bytesMax: number,
  ) {
    this.lastIndexes = new Array<number>(countMax).fill(0);
    this.sizes = new Array<number>(countMax).fill(0);
  }

  get count(): number {
    return this.countNow;
  }

  get bytes(): number {
    return this.bytesNow;
  }

  full(): boolean {
    return this.countNow >= this.countMax || (this.bytesMax > 0 && this.bytesNow >= this.bytesMax);
  }

  /** Records a message whose last entry is `lastIndex`. Indexes must increase. */
  add(lastIndex: number, bytes: number): void {
    if (this.countNow >= this.countMax)
      invariantFailed(`inflights full (${this.countMax}) when adding ${lastIndex}`);
    if (this.countNow > 0) {
      const newest = this.lastIndexes[(this.head + this.countNow - 1) % this.countMax]!;
      if (lastIndex <= newest) invariantFailed(`inflight ${lastIndex} not above newest ${newest}`);
    }
    const slot = (this.head + this.countNow) % this.countMax;
    this.lastIndexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.countNow++;
    this.bytesNow += bytes;
  }

  /** Frees every message whose last index is <= `index`. */
  freeUpTo(index: number): void {
    while (this.countNow > 0 && this.lastIndexes[this.head]! <= index) this.freeOldest();
  }

  /** Frees the oldest message (used to let one probe through when acknowledgements were lost). */
  freeOldest(): void {
    if (this.countNow === 0) return;
    this.bytesNow -= this.sizes[this.head]!;
    this.head = (this.head + 1) % this.countMax;
    this.countNow--;
  }

  reset(): void {
    this.head = 0;
    this.countNow = 0;
    this.bytesNow = 0;
  }
}
