/**
 * A stand-in for a webhook provider: posts webhooks to the intake with a delivery id header and
 * retries a delivery (same id) until it gets a 2xx, as real providers do.
 */

import { DEFAULT_DELIVERY_ID_HEADER } from './webhook.js';

export interface DeliveryOutcome {
  status: number;
  /** Attempts made, this one included. */
  attempts: number;
  /** The intake's JSON answer to the last attempt. */
  reply: { seq?: number; duplicate?: boolean; error?: string };
}

/** Posts one webhook once; `status` 0 means the request itself failed. */
export async function postWebhook(
  baseUrl: string,
  customer: string,
  deliveryId: string,
  payload: unknown,
): Promise<Omit<DeliveryOutcome, 'attempts'>> {
  try {
    const res = await fetch(`${baseUrl}/webhooks/${customer}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [DEFAULT_DELIVERY_ID_HEADER]: deliveryId },
      body: JSON.stringify(payload),
    });
    return { status: res.status, reply: (await res.json().catch(() => ({}))) as DeliveryOutcome['reply'] };
  } catch (error) {
    return { status: 0, reply: { error: String(error) } };
  }
}

/** Posts a webhook until it is accepted (2xx) or `maxAttempts` have failed, backing off in between. */
export async function deliverWebhook(
  baseUrl: string,
  customer: string,
  deliveryId: string,
  payload: unknown,
  { maxAttempts = 5, initialDelayMs = 200 } = {},
): Promise<DeliveryOutcome> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await postWebhook(baseUrl, customer, deliveryId, payload);
    const accepted = outcome.status >= 200 && outcome.status < 300;
    const refused = outcome.status >= 400 && outcome.status < 500; // a bad request stays bad
    if (accepted || refused || attempt >= maxAttempts) return { ...outcome, attempts: attempt };
    await new Promise((resolve) => setTimeout(resolve, initialDelayMs * 2 ** (attempt - 1)));
  }
}

/** The demo's traffic: `count` webhooks round-robin over `customers`, every `poisonEvery`-th one poison. */
export function demoWebhooks(
  count: number,
  customers: readonly string[],
  poisonEvery: number,
): Array<{ customer: string; deliveryId: string; payload: { n: number; event: string; poison?: true } }> {
  const runId = Date.now().toString(36);
  return Array.from({ length: count }, (_, i) => {
    const customer = customers[i % customers.length]!;
    const n = Math.floor(i / customers.length); // position within the customer's stream
    const poison = poisonEvery > 0 && (i + 1) % poisonEvery === 0;
    return {
      customer,
      deliveryId: `${runId}-${i}`,
      payload: { n, event: 'invoice.paid', ...(poison ? { poison: true as const } : {}) },
    };
  });
}
