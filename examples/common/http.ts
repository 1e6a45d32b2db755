/**
 * The small amount of HTTP plumbing the web-facing examples share (plain `node:http`, no
 * framework): bounded body reading, JSON replies, listening on a port, closing, and the HTTP
 * status that tells a caller what a failed publish means for them.
 */

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { FlotillaError } from '@flotilla/client';

/** A request the handler refuses, with the status to answer. */
export class HttpError extends Error {
  override readonly name = 'HttpError';

  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads the whole request body, refusing (413) more than `maxBytes` without buffering it. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new HttpError(413, `body over ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HttpError(413, `body over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Parses a JSON body, answering 400 when it is not JSON. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

/** Answers with a JSON value. */
export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Seconds a caller refused with 503 is asked to wait before retrying. */
export const RETRY_AFTER_S = 2;

/**
 * Answers an error: `HttpError` with its status (503 with Retry-After), anything else as 500 (the
 * details belong in the log, not in the answer).
 */
export function sendError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof HttpError) {
    const headers: Record<string, string> =
      error.status === 503 ? { 'retry-after': String(RETRY_AFTER_S) } : {};
    sendJson(res, error.status, { error: error.message }, headers);
  } else {
    sendJson(res, 500, { error: 'internal error' });
  }
}

/**
 * What a failed publish means for the HTTP caller. A request the broker refuses for its content is
 * the caller's mistake (400/413); everything else — no quorum, a full queue, a timeout whose
 * outcome is unknown — is "not stored, try again" (503 with Retry-After). A 2xx is only ever
 * sent after a confirmed publish.
 */
export function publishFailure(error: unknown): HttpError {
  if (error instanceof FlotillaError) {
    if (error.code === 'INVALID_ARGUMENT') return new HttpError(400, error.message);
    if (error.code === 'MESSAGE_TOO_LARGE') return new HttpError(413, error.message);
    return new HttpError(503, `not stored (${error.code}), try again`);
  }
  return new HttpError(503, 'not stored, try again');
}

/** Starts listening and resolves with the port actually bound (useful with port 0). */
export async function listen(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`no TCP address for ${host}:${port}`);
  return address.port;
}

/** Stops accepting connections and resolves once the requests in progress have been answered. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // Idle keep-alive connections would otherwise hold close() open until they time out.
    server.closeIdleConnections();
  });
}

/** Rejects with `onTimeout()` if `promise` has not settled within `timeoutMs`. */
export function withDeadline<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), timeoutMs);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
