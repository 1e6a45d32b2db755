/**
 * Product events: what the producer publishes and the batch writer stores. Each event has an id
 * that doubles as the publish's idempotency key, so re-running a producer with the same run id
 * stores nothing twice, and the output can be checked event by event.
 */

export const EVENTS_QUEUE = 'product-events';
export const EVENTS_DLQ = 'product-events.dlq';

export type ProductEventType = 'view' | 'add_to_cart' | 'purchase';

export interface ProductEvent {
  /** `<runId>-<index>`: unique per event. */
  eventId: string;
  type: ProductEventType;
  productId: string;
  userId: string;
  /** When the event happened, ms since the Unix epoch. */
  atMs: number;
  /** Price paid, for purchases. */
  priceCents?: number;
}

/** One line of an output file. */
export interface OutputLine {
  /** The message's sequence number in the queue. */
  seq: number;
  publishedAtMs: number;
  event: ProductEvent;
}

const TYPES: readonly ProductEventType[] = [
  'view',
  'view',
  'view',
  'view',
  'add_to_cart',
  'add_to_cart',
  'purchase',
];

/** The `index`-th event of a run: varied but reproducible from its index. */
export function makeEvent(runId: string, index: number, atMs: number): ProductEvent {
  const type = TYPES[index % TYPES.length]!;
  const event: ProductEvent = {
    eventId: `${runId}-${index}`,
    type,
    productId: `p${(index * 7919) % 500}`,
    userId: `u${(index * 104_729) % 2_000}`,
    atMs,
  };
  if (type === 'purchase') event.priceCents = 500 + ((index * 31) % 20_000);
  return event;
}
