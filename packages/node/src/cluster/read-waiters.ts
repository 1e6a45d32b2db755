/**
 * Linearizable reads waiting on the log (ReadIndex, Raft §6.4): a read is first *pending* until
 * the core confirms its read index with a quorum (a `ReadState`), then *confirmed* until the state
 * machine has applied that index, and resolves then. Pending reads are the ones a leadership loss
 * fails: the core drops them unanswered. Confirmed reads stay valid after it.
 */
import type { ReadState } from '../raft/index.js';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class ReadWaiters {
  private seq = 0;
  private readonly pending = new Map<number, Waiter>();
  /** In index order (the core confirms reads in request order, with non-decreasing indexes). */
  private readonly confirmed: { index: number; waiter: Waiter }[] = [];

  /** The context number for the next `readIndex(ctx)` call. */
  nextContext(): number {
    return ++this.seq;
  }

  /** A read the core accepted under `ctx`. */
  wait(ctx: number): Promise<void> {
    return new Promise((resolve, reject) => this.pending.set(ctx, { resolve, reject }));
  }

  /** The core confirmed a read: resolve it now if `appliedIndex` is there, else when it gets there. */
  confirm(state: ReadState, appliedIndex: number): void {
    const waiter = this.pending.get(state.ctx);
    if (waiter === undefined) return;
    this.pending.delete(state.ctx);
    if (appliedIndex >= state.index) waiter.resolve();
    else this.confirmed.push({ index: state.index, waiter });
  }

  /** The state machine has applied everything up to `index`. */
  applied(index: number): void {
    let n = 0;
    while (n < this.confirmed.length && this.confirmed[n]!.index <= index)
      this.confirmed[n++]!.waiter.resolve();
    if (n > 0) this.confirmed.splice(0, n);
  }

  /** Leadership lost: reads not yet confirmed never will be. */
  failPending(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }

  /** The node stops: every read fails. */
  failAll(err: Error): void {
    this.failPending(err);
    for (const { waiter } of this.confirmed.splice(0)) waiter.reject(err);
  }
}
