/**
 * The web handler: POST /send with JSON `{to, subject, body}` enqueues a "send email" job and
 * answers 202 as soon as the broker has confirmed the publish (stored on a majority), without
 * waiting for the email to go out. An `Idempotency-Key` header makes retries of the same request
 * store one job; without it each request is a new job. If the publish cannot be confirmed within
 * `publishTimeoutMs`, the answer is 503 and the caller should retry (with its key, to be safe).
 */

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { FlotillaClient } from '@flotilla/client';
import {
  closeServer,
  HttpError,
  listen,
  parseJson,
  publishFailure,
  readBody,
  sendError,
  sendJson,
  withDeadline,
} from '../common/http.js';
import { type Logger, plainLogger } from '../common/log.js';
import { describeError } from '../common/shutdown.js';
import { EMAIL_QUEUE, type EmailJob, type EmailRequest, emailRequestProblem } from './email.js';

export interface EmailWebOptions {
  client: FlotillaClient;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8025; 0 picks a free port. */
  port?: number;
  /** How long a request waits for the publish to be confirmed before answering 503 (default 10,000 ms). */
  publishTimeoutMs?: number;
  log?: Logger;
}

export interface EmailWeb {
  /** Base URL, e.g. http://127.0.0.1:8025 */
  readonly url: string;
  /** Jobs accepted (202) so far, duplicates of an idempotency key included. */
  readonly accepted: number;
  /** Stops accepting requests; resolves when the requests in progress have been answered. */
  close(): Promise<void>;
}

/** Largest request body accepted: the job limits plus JSON overhead. */
const MAX_REQUEST_BYTES = 128 * 1024;
/** Idempotency keys are stored by the broker; keep them short and printable. */
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

export async function startEmailWeb(options: EmailWebOptions): Promise<EmailWeb> {
  const { client } = options;
  const log = options.log ?? plainLogger('email-web');
  const publishTimeoutMs = options.publishTimeoutMs ?? 10_000;
  let accepted = 0;

  const enqueue = async (req: IncomingMessage, res: ServerResponse) => {
    const job = toJob(parseJson(await readBody(req, MAX_REQUEST_BYTES)), idempotencyKey(req));
    const receipt = await withDeadline(
      client.publish(EMAIL_QUEUE, job, { idempotencyKey: job.id }),
      publishTimeoutMs,
      () => new HttpError(503, `publish not confirmed within ${publishTimeoutMs} ms, try again`),
    ).catch((error: unknown) => {
      if (!(error instanceof HttpError)) log.warn(`publish of ${job.id} failed: ${describeError(error)}`);
      throw error instanceof HttpError ? error : publishFailure(error);
    });
    accepted++;
    sendJson(res, 202, { id: job.id, seq: receipt.seq, duplicate: receipt.duplicate });
  };

  const server = createServer((req, res) => {
    route(req, res, enqueue).catch((error: unknown) => {
      if (!(error instanceof HttpError)) log.error(`${req.method} ${req.url}: ${describeError(error)}`);
      sendError(res, error);
    });
  });
  const host = options.host ?? '127.0.0.1';
  const port = await listen(server, host, options.port ?? 8025);
  const url = `http://${host}:${port}`;
  log.info(`POST ${url}/send enqueues to ${EMAIL_QUEUE}`);
  return {
    url,
    get accepted() {
      return accepted;
    },
    close: () => closeServer(server),
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

async function route(req: IncomingMessage, res: ServerResponse, enqueue: Handler): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/health' && req.method === 'GET') return sendJson(res, 200, { ok: true });
  if (path !== '/send') throw new HttpError(404, 'not found; POST /send');
  if (req.method !== 'POST') throw new HttpError(405, 'use POST');
  await enqueue(req, res);
}

function idempotencyKey(req: IncomingMessage): string | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new HttpError(400, 'Idempotency-Key must be 1..200 printable ASCII characters');
  }
  return key;
}

function toJob(value: unknown, key: string | undefined): EmailJob {
  const problem = emailRequestProblem(value);
  if (problem !== null) throw new HttpError(400, problem);
  const { to, subject, body } = value as EmailRequest;
  return { id: key ?? randomUUID(), to, subject, body, requestedAtMs: Date.now() };
}
