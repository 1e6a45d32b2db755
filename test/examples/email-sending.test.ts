/**
 * The email example against a real 3-node cluster: a burst of 10,000 requests through the web
 * handler (the burst the example promises to survive) is sent to
 * the fake SMTP sink once per job (duplicates are tolerated only if the connection failed over,
 * as at-least-once delivery allows), the sink's attempt times never beat the token bucket, sink
 * failures are retried with the queue's backoff, bad requests store nothing, an idempotency key
 * stores one job, and a message that is not a job ends in the dead-letter queue.
 */

import type { FlotillaClient } from '@flotilla/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../examples/common/log.js';
import { fireBurst } from '../../examples/email-sending/burst.js';
import { EMAIL_DLQ, EMAIL_QUEUE } from '../../examples/email-sending/email.js';
import { FakeSmtpSink } from '../../examples/email-sending/sink.js';
import { maxInWindow } from '../../examples/email-sending/token-bucket.js';
import { startEmailWeb } from '../../examples/email-sending/web.js';
import { setupEmailQueues, startEmailWorker } from '../../examples/email-sending/worker.js';
import type { TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import { Cleanup, clientFor, type FaultLog, seededRandom, startCluster } from './harness.js';

/** High enough that sending the burst takes seconds; the bound below is what the test checks. */
const RATE_PER_SEC = 2_000;
const BUCKET = 20;
/** The burst the email example promises to survive (issue and README: 10,000 requests). */
const BURST_COUNT = 10_000;

let cluster: TestCluster;
let client: FlotillaClient;
let faults: FaultLog;
const clusterCleanup = new Cleanup();
const cleanup = new Cleanup();

beforeAll(async () => {
  cluster = await startCluster();
  clusterCleanup.add(() => cluster.stop());
  ({ client, faults } = await clientFor(cluster, clusterCleanup));
  // Quick retries so a refused send comes back within the test; ten attempts so none dead-letters.
  await setupEmailQueues(client, {
    maxDeliveries: 10,
    retry: { backoff: 'exponential', delayMs: 50, maxDelayMs: 400 },
  });
});

afterEach(() => cleanup.run());
afterAll(() => clusterCleanup.run());

async function post(url: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, reply: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

describe('email sending', () => {
  it('sends a burst once per job, never faster than the token bucket, retrying refused sends', async () => {
    const sink = new FakeSmtpSink({ failRate: 0.05, random: seededRandom(7) });
    const grantsMs: number[] = [];
    const worker = await startEmailWorker({
      client,
      sink,
      ratePerSec: RATE_PER_SEC,
      burst: BUCKET,
      onTokenGranted: (atMs) => grantsMs.push(atMs),
      log: memoryLogger(),
      progressEveryMs: 0,
    });
    cleanup.add(() => worker.close());
    const web = await startEmailWeb({ client, port: 0, log: memoryLogger() });
    cleanup.add(() => web.close());
    const before = await client.queueStats(EMAIL_QUEUE);

    const burst = await fireBurst({ url: web.url, count: BURST_COUNT, concurrency: 100 });
    expect(burst).toMatchObject({ accepted: BURST_COUNT, failed: 0 });
    await waitFor(() => burst.ids.every((id) => sink.has(id)), {
      timeoutMs: 60_000,
      what: `all ${BURST_COUNT} emails to reach the sink`,
    });
    await waitFor(async () => (await client.queueStats(EMAIL_QUEUE)).depth === 0, {
      timeoutMs: 10_000,
      what: 'the queue to empty (every job acked)',
    });

    const summary = sink.summary();
    expect(summary.unique).toBe(BURST_COUNT);
    // At least once: a job may be sent twice only if its delivery was cut by a failover.
    if (faults.events.length === 0) expect(summary.duplicates).toBe(0);
    else console.warn(`duplicates after faults ${faults.events.join('; ')}: ${summary.duplicates}`);
    // Refused sends were retried by the queue (and counted as attempts against the rate).
    expect(summary.temporaryFailures).toBeGreaterThan(0);
    expect(summary.attempts).toBe(summary.accepted + summary.temporaryFailures);
    const after = await client.queueStats(EMAIL_QUEUE);
    expect(after.deadLetteredCount - before.deadLetteredCount).toBe(0);
    expect(after.ackedCount - before.ackedCount).toBe(BURST_COUNT + summary.duplicates);

    // Every attempt took a token, and the tokens were taken at most BUCKET + rate × window in any
    // window (windows are inclusive at both ends: one more). The check is on the times the tokens
    // were taken: the sink notes an attempt a little later, after whatever else that turn of the
    // event loop runs, which on a loaded machine bunches the sink's own timestamps.
    expect(grantsMs).toHaveLength(summary.attempts);
    for (const windowMs of [100, 1_000]) {
      const bound = BUCKET + Math.floor((RATE_PER_SEC * windowMs) / 1000) + 1;
      expect(maxInWindow(grantsMs, windowMs), `tokens taken in ${windowMs} ms`).toBeLessThanOrEqual(bound);
    }
  }, 120_000);

  it('answers bad requests with 4xx and stores nothing for them', async () => {
    const web = await startEmailWeb({ client, port: 0, log: memoryLogger() });
    cleanup.add(() => web.close());
    const before = await client.queueStats(EMAIL_QUEUE);

    expect((await post(web.url, '{not json')).status).toBe(400);
    expect((await post(web.url, JSON.stringify({ to: 'nobody', subject: 's', body: 'b' }))).status).toBe(400);
    expect((await post(web.url, JSON.stringify({ to: 'a@b.example', subject: 7, body: 'b' }))).status).toBe(
      400,
    );
    expect((await post(web.url, JSON.stringify(['a@b.example']))).status).toBe(400);
    expect((await post(web.url, 'x'.repeat(200_000))).status).toBe(413);
    const badKey = await post(web.url, JSON.stringify({ to: 'a@b.example', subject: 's', body: 'b' }), {
      'idempotency-key': 'has space',
    });
    expect(badKey.status).toBe(400);
    expect((await fetch(`${web.url}/send`)).status).toBe(405);
    expect((await fetch(`${web.url}/elsewhere`, { method: 'POST' })).status).toBe(404);

    const after = await client.queueStats(EMAIL_QUEUE);
    expect(after.publishedCount).toBe(before.publishedCount);
  });

  it('stores one job for requests repeated with the same Idempotency-Key', async () => {
    const web = await startEmailWeb({ client, port: 0, log: memoryLogger() });
    cleanup.add(() => web.close());
    const email = JSON.stringify({ to: 'twice@example.com', subject: 'Once', body: 'only once' });
    const key = `same-key-${Date.now()}`;

    const first = await post(web.url, email, { 'idempotency-key': key });
    const second = await post(web.url, email, { 'idempotency-key': key });

    expect(first).toMatchObject({ status: 202, reply: { id: key, duplicate: false } });
    expect(second).toMatchObject({ status: 202, reply: { id: key, duplicate: true, seq: first.reply.seq } });
  });

  it('dead-letters a message that is not an email job, after maxDeliveries attempts', async () => {
    const sink = new FakeSmtpSink();
    const log = memoryLogger();
    const worker = await startEmailWorker({ client, sink, log, progressEveryMs: 0 });
    cleanup.add(() => worker.close());
    const { seq } = await client.publish(EMAIL_QUEUE, { hello: 'not an email' });

    const [dead] = await waitFor(
      async () => {
        const found = (await client.peek(EMAIL_DLQ)).filter((m) => (m.body as { hello?: string }).hello);
        return found.length > 0 ? found : false;
      },
      { timeoutMs: 20_000, what: 'the poison message in the DLQ' },
    );
    expect(dead!.body).toEqual({ hello: 'not an email' });
    // Each attempt was refused before reaching the sink (and before taking a token).
    expect(worker.stats.invalid).toBe(10);
    expect(
      log.lines.filter((line) => line.includes(`${EMAIL_QUEUE}#${seq} is not an email job`)),
    ).toHaveLength(10);
  });
});
