/**
 * A token bucket: the worker takes one token per SMTP attempt, so attempts never exceed
 * `capacity + ratePerSec × seconds` over any stretch of time, however many jobs are waiting.
 * Waiters are served in arrival order by a single timer (not one timer per waiter).
 */

export interface TokenBucketOptions {
  /** Tokens added per second: the sustained rate. */
  ratePerSec: number;
  /** Tokens the bucket holds at most: the largest burst after an idle spell. */
  capacity: number;
  /** Monotonic clock in ms (injectable for tests). */
  nowMs?: () => number;
  /** Told the time of every token taken (observability; tests check the rate on these). */
  onGrant?: (atMs: number) => void;
}

export class TokenBucket {
  readonly ratePerSec: number;
  readonly capacity: number;
  private readonly nowMs: () => number;
  private readonly onGrant: ((atMs: number) => void) | undefined;
  private tokens: number;
  private refilledAtMs: number;
  private readonly waiters: Array<() => void> = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: TokenBucketOptions) {
    const { ratePerSec, capacity } = options;
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) {
      throw new RangeError(`ratePerSec must be a positive number, got ${ratePerSec}`);
    }
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.ratePerSec = ratePerSec;
    this.capacity = capacity;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.onGrant = options.onGrant;
    this.tokens = capacity;
    this.refilledAtMs = this.nowMs();
  }

  /** Callers waiting for a token. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves when a token has been taken for the caller (at once if one is available). */
  take(): Promise<void> {
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.onGrant?.(this.refilledAtMs);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.scheduleRelease();
    });
  }

  private refill(): void {
    const now = this.nowMs();
    const earned = ((now - this.refilledAtMs) * this.ratePerSec) / 1000;
    this.tokens = Math.min(this.capacity, this.tokens + earned);
    this.refilledAtMs = now;
  }

  /** Arms the timer for the moment the next whole token exists. */
  private scheduleRelease(): void {
    if (this.timer !== undefined) return;
    const waitMs = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSec));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.release();
    }, waitMs);
  }

  private release(): void {
    this.refill();
    while (this.waiters.length > 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.onGrant?.(this.refilledAtMs);
      this.waiters.shift()!();
    }
    if (this.waiters.length > 0) this.scheduleRelease();
  }
}

/**
 * The most events found in any window of `windowMs` (inclusive at both ends) among sorted
 * timestamps: what a rate limit is checked against.
 */
export function maxInWindow(sortedTimestampsMs: readonly number[], windowMs: number): number {
  let best = 0;
  let start = 0;
  for (let end = 0; end < sortedTimestampsMs.length; end++) {
    while (sortedTimestampsMs[end]! - sortedTimestampsMs[start]! > windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}
