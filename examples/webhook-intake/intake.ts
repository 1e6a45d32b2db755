/**
 * The webhook intake: POST /webhooks/:customer stores the webhook in the queue and answers 202 only
 * once the publish is confirmed (stored on a majority of the cluster). The customer becomes the
 * message group (per-customer order) and the provider's delivery id the idempotency key, so a
 * provider retrying a delivery — because our 202 was lost, or because we answered 503 — never
 * stores it twice. If the publish is not confirmed within `publishTimeoutMs` the answer is 503
 * with Retry-After, and nothing is promised; providers retry on any non-2xx answer.
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { FlotillaClient } from '@flotilla/client';
import {
  closeServer,
  HttpError,
  listen,
  publishFailure,
  readBody,
  sendError,
  sendJson,
  withDeadline,
} from '../common/http.js';
import { type Logger, plainLogger } from '../common/log.js';
import { describeError } from '../common/shutdown.js';
import {
  CUSTOMER_PATTERN,
  DEFAULT_DELIVERY_ID_HEADER,
  HEADER,
  idempotencyKeyOf,
  WEBHOOK_QUEUE,
} from './webhook.js';

export interface WebhookIntakeOptions {
  client: FlotillaClient;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8026; 0 picks a free port. */
  port?: number;
  /** Header carrying the provider's delivery id (default x-delivery-id). */
  deliveryIdHeader?: string;
  /** Largest body accepted (default 256 KiB). */
  maxBodyBytes?: number;
  /** How long to wait for the publish to be confirmed before answering 503 (default 5,000 ms). */
  publishTimeoutMs?: number;
  log?: Logger;
}

export interface WebhookIntake {
  /** Base URL, e.g. http://127.0.0.1:8026 */
  readonly url: string;
  /** Stops accepting webhooks; resolves when the requests in progress have been answered. */
  close(): Promise<void>;
}

/** Delivery ids are stored in the idempotency key (at most 256 bytes with the customer). */
const DELIVERY_ID_PATTERN = /^[\x21-\x7e]{1,180}$/;

interface Incoming {
  customer: string;
  deliveryId: string;
  contentType: string;
  body: Buffer;
}

export async function startWebhookIntake(options: WebhookIntakeOptions): Promise<WebhookIntake> {
  const log = options.log ?? plainLogger('webhook-intake');
  const headerName = (options.deliveryIdHeader ?? DEFAULT_DELIVERY_ID_HEADER).toLowerCase();
  const maxBodyBytes = options.maxBodyBytes ?? 256 * 1024;
  const publishTimeoutMs = options.publishTimeoutMs ?? 5_000;

  const store = async (webhook: Incoming, res: ServerResponse) => {
    const publish = options.client.publish(WEBHOOK_QUEUE, new Uint8Array(webhook.body), {
      group: webhook.customer,
      idempotencyKey: idempotencyKeyOf(webhook.customer, webhook.deliveryId),
      headers: {
        [HEADER.deliveryId]: webhook.deliveryId,
        [HEADER.contentType]: webhook.contentType,
        [HEADER.receivedAt]: new Date().toISOString(),
      },
    });
    const receipt = await withDeadline(
      publish,
      publishTimeoutMs,
      () => new HttpError(503, `not confirmed within ${publishTimeoutMs} ms, retry later`),
    ).catch((error: unknown) => {
      const refusal = error instanceof HttpError ? error : publishFailure(error);
      log.warn(
        `${webhook.customer}/${webhook.deliveryId}: answering ${refusal.status} (${describeError(error)})`,
      );
      throw refusal;
    });
    const note = receipt.duplicate ? ' (a retry of a stored delivery)' : '';
    log.info(`${webhook.customer}/${webhook.deliveryId} stored as ${WEBHOOK_QUEUE}#${receipt.seq}${note}`);
    sendJson(res, 202, { seq: receipt.seq, duplicate: receipt.duplicate });
  };

  const server = createServer((req, res) => {
    handle(req, headerName, maxBodyBytes)
      .then((webhook) => (webhook === null ? sendJson(res, 200, { ok: true }) : store(webhook, res)))
      .catch((error: unknown) => {
        if (!(error instanceof HttpError)) log.error(`${req.method} ${req.url}: ${describeError(error)}`);
        sendError(res, error);
      });
  });
  const host = options.host ?? '127.0.0.1';
  const port = await listen(server, host, options.port ?? 8026);
  const url = `http://${host}:${port}`;
  log.info(`POST ${url}/webhooks/<customer> (delivery id in ${headerName}) stores into ${WEBHOOK_QUEUE}`);
  return { url, close: () => closeServer(server) };
}

/** Checks a request; resolves with the webhook to store, or null for a health check. */
async function handle(
  req: IncomingMessage,
  headerName: string,
  maxBodyBytes: number,
): Promise<Incoming | null> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/health' && req.method === 'GET') return null;
  const match = /^\/webhooks\/([^/]+)$/.exec(path);
  if (match === null) throw new HttpError(404, 'not found; POST /webhooks/<customer>');
  if (req.method !== 'POST') throw new HttpError(405, 'use POST');
  const customer = match[1]!; // the pattern admits no percent-escapes, so no decoding is needed
  if (!CUSTOMER_PATTERN.test(customer)) throw new HttpError(400, 'customer must be 1..64 of [A-Za-z0-9._-]');
  const deliveryId = req.headers[headerName];
  if (typeof deliveryId !== 'string' || !DELIVERY_ID_PATTERN.test(deliveryId)) {
    throw new HttpError(400, `header ${headerName} must carry the delivery id (1..180 printable characters)`);
  }
  const contentType = req.headers['content-type'] ?? 'application/octet-stream';
  return { customer, deliveryId, contentType, body: await readBody(req, maxBodyBytes) };
}
