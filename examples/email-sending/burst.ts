/**
 * Fires a burst of POST /send requests at the web handler, `concurrency` at a time, and counts
 * the answers. Each request carries an Idempotency-Key, so a request answered 503 (or cut off) is
 * retried with the same key and can never become two emails.
 *
 * As a command: npx tsx examples/email-sending/burst.ts --url http://127.0.0.1:8025 --count 10000
 */

import { parseArgs } from 'node:util';
import { plainLogger } from '../common/log.js';
import { isMainModule } from '../common/shutdown.js';

export interface BurstOptions {
  /** Base URL of the web handler. */
  url: string;
  count: number;
  /** Requests in flight at once (default 100). */
  concurrency?: number;
  /** Attempts per request before it counts as failed (default 5). */
  maxAttempts?: number;
  /** Prefix of the idempotency keys, unique per burst (default: a random one). */
  runId?: string;
}

export interface BurstResult {
  /** Requests answered 202. */
  accepted: number;
  /** Of those, how many the broker reported as duplicates of an earlier attempt's publish. */
  duplicates: number;
  /** Requests that never got a 202. */
  failed: number;
  /** Attempts answered with something other than 202, by status ("error" when the request itself failed). */
  refusals: Record<string, number>;
  elapsedMs: number;
  /** The job ids (idempotency keys) of the accepted requests. */
  ids: string[];
}

/** Sends `count` requests and resolves with what they were answered. */
export async function fireBurst(options: BurstOptions): Promise<BurstResult> {
  const runId = options.runId ?? `burst-${Date.now().toString(36)}`;
  const result: BurstResult = { accepted: 0, duplicates: 0, failed: 0, refusals: {}, elapsedMs: 0, ids: [] };
  const startedMs = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < options.count) {
      const index = next++;
      await sendOne(options, `${runId}-${index}`, index, result);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 100 }, lane));
  result.elapsedMs = Math.round(performance.now() - startedMs);
  return result;
}

async function sendOne(
  options: BurstOptions,
  key: string,
  index: number,
  result: BurstResult,
): Promise<void> {
  const email = {
    to: `user${index}@example.com`,
    subject: `Welcome #${index}`,
    body: `Hello user ${index}!`,
  };
  const maxAttempts = options.maxAttempts ?? 5;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const status = await post(`${options.url}/send`, key, email);
    if (status.code === 202) {
      result.accepted++;
      if (status.duplicate) result.duplicates++;
      result.ids.push(key);
      return;
    }
    const label = String(status.code ?? 'error');
    result.refusals[label] = (result.refusals[label] ?? 0) + 1;
    if (status.code !== null && status.code < 500) break; // the request itself is wrong: retrying won't help
    await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** (attempt - 1)));
  }
  result.failed++;
}

async function post(
  url: string,
  key: string,
  email: object,
): Promise<{ code: number | null; duplicate: boolean }> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(email),
    });
    const reply = (await res.json().catch(() => ({}))) as { duplicate?: unknown };
    return { code: res.status, duplicate: reply.duplicate === true };
  } catch {
    return { code: null, duplicate: false };
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8025' },
      count: { type: 'string', default: '10000' },
      concurrency: { type: 'string', default: '100' },
    },
  });
  const log = plainLogger('burst');
  const count = Number(values.count);
  log.info(`firing ${count} requests at ${values.url}/send`);
  const result = await fireBurst({ url: values.url, count, concurrency: Number(values.concurrency) });
  const { ids: _ids, ...summary } = result;
  log.info(
    `done: ${JSON.stringify(summary)} (${Math.round((result.accepted * 1000) / result.elapsedMs)} accepted/s)`,
  );
  process.exitCode = result.failed === 0 ? 0 : 1;
}

if (isMainModule(import.meta.url)) await main();
