/**
 * A tiny typed actor runtime. An actor owns its state, receives messages through a bounded
 * mailbox and handles them one at a time; others talk to it only by `send`. After the mailbox is
 * drained the actor's `flush` hook runs once, which is where batching happens: everything that
 * arrived in one event-loop turn leaves as one write, one frame, one proposal.
 */

export class MailboxFullError extends Error {
  override readonly name = 'MailboxFullError';
}

export abstract class Actor<M> {
  private mailbox: M[] = [];
  private head = 0;
  private scheduled = false;
  private stopped = false;

  /**
   * @param name used in errors
   * @param mailboxMax bound on queued messages; a full mailbox refuses new ones (the sender must
   *   apply backpressure) rather than growing without limit.
   */
  protected constructor(
    readonly name: string,
    private readonly mailboxMax = 100_000,
  ) {}

  /** Queue a message. Returns false (and drops it) when the mailbox is full or the actor stopped. */
  trySend(message: M): boolean {
    if (this.stopped || this.mailbox.length - this.head >= this.mailboxMax) return false;
    this.mailbox.push(message);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.drain);
    }
    return true;
  }

  /** Queue a message; throws {@link MailboxFullError} when the actor cannot take it. */
  send(message: M): void {
    if (!this.trySend(message)) {
      throw new MailboxFullError(
        `${this.name}: ${this.stopped ? 'stopped' : `mailbox full (${this.mailboxMax})`}`,
      );
    }
  }

  get pending(): number {
    return this.mailbox.length - this.head;
  }

  /** Stop taking messages; queued ones are dropped. */
  protected stopMailbox(): void {
    this.stopped = true;
    this.mailbox = [];
    this.head = 0;
  }

  /** Handle one message. Must not throw for bad input; a throw is a bug and stops the process. */
  protected abstract handle(message: M): void;

  /** Runs once after each drained batch of messages. */
  protected flush(): void {}

  private readonly drain = (): void => {
    this.scheduled = false;
    while (this.head < this.mailbox.length) {
      const message = this.mailbox[this.head]!;
      this.mailbox[this.head++] = undefined as M;
      this.handle(message);
      if (this.stopped) return;
    }
    this.mailbox.length = 0;
    this.head = 0;
    this.flush();
  };
}
