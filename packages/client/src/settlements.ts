/**
 * Coalesces acks, nacks and extends: everything settled in one event-loop turn goes out as one
 * frame per op (per nack delay, per extend length; rejections, nacks with `deadLetter`, apart),
 * split only at the server's maxAckBatch. Each
 * caller's promise settles from its own item's outcome: the server lists only failed items, by
 * index. Settlements are idempotent per deliveryId, so a frame whose outcome is unknown (lost
 * connection, timeout) is safely sent again. A retry's item failure may then be caused by the lost
 * attempt itself (a nack that was applied, the message redelivered, and the retry told
 * LEASE_EXPIRED): such failures are reported as outcome unknown, see `itemFailure`.
 */

import { type AckItem, FlotillaError } from '@flotilla/shared';
import type { Message, Settler } from './message.js';
import { afterTurn, deferred, outcomeUnknown } from './util.js';

/** How a group of deliveries is settled: `reject` is a nack with `deadLetter`. */
export type SettleOp = 'ack' | 'nack' | 'reject' | 'extend';

/** What settlements need from the client: sending a request with retries. */
export interface SettlementTransport {
  /**
   * Sends an ack/nack/extend frame (retried while the outcome is unknown) and returns the failed
   * items, and the maybe-applied failure of an earlier attempt if there was one.
   */
  settle(op: SettleOp, items: AckItem[], arg: number | undefined): Promise<SettleOutcome>;
  /** Current maxAckBatch. */
  maxAckBatch(): number;
}

/** What one settlement frame came to. */
export interface SettleOutcome {
  /** Items the server refused, by index in the frame. */
  failed: Array<{ index: number; code: FlotillaError['code'] }>;
  /** A failed attempt before the one that answered, which may have been applied; else null. */
  uncertain: FlotillaError | null;
}

interface PendingItem {
  item: AckItem;
  resolve(): void;
  reject(error: FlotillaError): void;
}

interface Group {
  op: SettleOp;
  arg: number | undefined;
  items: PendingItem[];
}

/** The per-turn coalescer behind `Message.ack/nack/extend`. */
export class Settlements implements Settler {
  private groups = new Map<string, Group>();
  private scheduled = false;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly transport: SettlementTransport) {}

  ack(message: Message): Promise<void> {
    return this.add('ack', undefined, message);
  }

  nack(message: Message, delayMs: number | undefined): Promise<void> {
    return this.add('nack', delayMs, message);
  }

  reject(message: Message): Promise<void> {
    return this.add('reject', undefined, message);
  }

  extend(message: Message, ms: number): Promise<void> {
    return this.add('extend', ms, message);
  }

  /** Settlements queued or in flight. */
  get pendingCount(): number {
    let queued = 0;
    for (const group of this.groups.values()) queued += group.items.length;
    return queued + this.inFlight;
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.pendingCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private add(op: Group['op'], arg: number | undefined, message: Message): Promise<void> {
    const key = `${op}:${arg ?? ''}`;
    let group = this.groups.get(key);
    if (group === undefined) {
      group = { op, arg, items: [] };
      this.groups.set(key, group);
    }
    const done = deferred<void>();
    group.items.push({
      item: { queue: message.queue, seq: message.seq, deliveryId: message.deliveryId },
      resolve: done.resolve,
      reject: done.reject,
    });
    this.schedule();
    return done.promise;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    afterTurn(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const groups = [...this.groups.values()];
    this.groups = new Map();
    const max = Math.max(1, this.transport.maxAckBatch());
    for (const group of groups) {
      for (let start = 0; start < group.items.length; start += max) {
        void this.send(group, group.items.slice(start, start + max));
      }
    }
  }

  private async send(group: Group, batch: PendingItem[]): Promise<void> {
    this.inFlight += batch.length;
    try {
      const { failed, uncertain } = await this.transport.settle(
        group.op,
        batch.map((pending) => pending.item),
        group.arg,
      );
      const failures = new Map(failed.map(({ index, code }) => [index, code]));
      batch.forEach((pending, index) => {
        const code = failures.get(index);
        if (code === undefined) pending.resolve();
        else pending.reject(itemFailure(group.op, pending.item, code, uncertain));
      });
    } catch (error) {
      const failure = error instanceof FlotillaError ? error : new FlotillaError('INTERNAL', String(error));
      for (const pending of batch) pending.reject(failure);
    } finally {
      this.inFlight -= batch.length;
      this.notifyIdle();
    }
  }

  private notifyIdle(): void {
    if (this.pendingCount !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) waiter();
  }
}

function itemError(op: string, item: AckItem, code: FlotillaError['code']): FlotillaError {
  return new FlotillaError(
    code,
    `${op} of ${item.queue}#${item.seq} (delivery ${item.deliveryId}) failed: ${code}`,
    {
      queue: item.queue,
      seq: item.seq,
      deliveryId: item.deliveryId,
    },
  );
}

/**
 * An item's failure as its caller sees it. After an earlier attempt of the frame that may have
 * been applied, the item's code may be that attempt's doing (an applied nack made the message
 * ready, it was delivered again, and the retry was told LEASE_EXPIRED), so it is reported as
 * outcome unknown. Except LEASE_EXPIRED on an ack or a reject: both remove the message when
 * applied, and a settlement of a message that left the queue succeeds, so LEASE_EXPIRED proves
 * the earlier attempt did not apply either.
 */
function itemFailure(
  op: SettleOp,
  item: AckItem,
  code: FlotillaError['code'],
  uncertain: FlotillaError | null,
): FlotillaError {
  const error = itemError(op, item, code);
  if (uncertain === null) return error;
  if (code === 'LEASE_EXPIRED' && (op === 'ack' || op === 'reject')) return error;
  return outcomeUnknown(`${op} of ${item.queue}#${item.seq} (delivery ${item.deliveryId})`, error, [
    uncertain,
  ]);
}
