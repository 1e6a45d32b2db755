/**
 * What the webhook example stores and hands to processors. The provider's body is kept as the
 * exact bytes received (a signature check needs them untouched); the customer travels as the
 * message group, so one customer's webhooks are processed one at a time, in arrival order.
 */

import type { Message } from '@flotilla/client';

export const WEBHOOK_QUEUE = 'webhooks';
export const WEBHOOK_DLQ = 'webhooks.dlq';

/** Header naming the provider's delivery id (the same id on every retry of one delivery). */
export const DEFAULT_DELIVERY_ID_HEADER = 'x-delivery-id';

/** Customer ids as they appear in the URL: short, URL- and log-safe. */
export const CUSTOMER_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Message headers the intake sets. */
export const HEADER = {
  deliveryId: 'delivery-id',
  contentType: 'content-type',
  receivedAt: 'received-at',
} as const;

/** A stored webhook as a processor sees it. */
export interface WebhookEvent {
  customer: string;
  deliveryId: string;
  contentType: string;
  /** The body exactly as the provider sent it. */
  body: Uint8Array;
  /** Position in the queue (increasing in arrival order). */
  seq: number;
  /** 1 for the first attempt, then 2, 3... */
  attempt: number;
}

/** The idempotency key of one provider delivery: retries of it are stored once. */
export function idempotencyKeyOf(customer: string, deliveryId: string): string {
  return `${customer}:${deliveryId}`;
}

/** Reads a delivered message as a webhook event. */
export function toWebhookEvent(message: Message): WebhookEvent {
  const headers = message.headers ?? {};
  return {
    customer: message.group ?? '',
    deliveryId: headers[HEADER.deliveryId] ?? '',
    contentType: headers[HEADER.contentType] ?? 'application/octet-stream',
    body: message.bytes,
    seq: message.seq,
    attempt: message.deliveryCount,
  };
}

/** The body parsed as JSON, or undefined when it is not JSON. */
export function jsonBody(event: WebhookEvent): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(event.body));
  } catch {
    return undefined;
  }
}
