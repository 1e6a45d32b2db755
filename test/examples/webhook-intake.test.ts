/**
 * The webhook example against a real 3-node cluster: 202 comes only after the publish is
 * confirmed (the message is readable from another client at once, and without a quorum the
 * answer is 503); a provider's retry of a delivery stores it once; bad requests store nothing;
 * and with flaky processing and poison webhooks on two processors, every customer's webhooks are
 * processed one at a time in the order they arrived, flaky ones after a retry, poison ones
 * dead-lettered after maxDeliveries attempts.
 */

import type { FlotillaClient } from '@flotilla/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../examples/common/log.js';
import { startWebhookIntake } from '../../examples/webhook-intake/intake.js';
import {
  demoProcessor,
  type ProcessWebhook,
  setupWebhookQueues,
  startWebhookProcessor,
} from '../../examples/webhook-intake/processor.js';
import { deliverWebhook, postWebhook } from '../../examples/webhook-intake/provider.js';
import { jsonBody, WEBHOOK_DLQ, WEBHOOK_QUEUE } from '../../examples/webhook-intake/webhook.js';
import type { TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import { Cleanup, clientFor, type FaultLog, startCluster } from './harness.js';

const MAX_DELIVERIES = 3;

let cluster: TestCluster;
let client: FlotillaClient;
const clusterCleanup = new Cleanup();
const cleanup = new Cleanup();

beforeAll(async () => {
  cluster = await startCluster();
  clusterCleanup.add(() => cluster.stop());
  ({ client } = await clientFor(cluster, clusterCleanup));
  await setupWebhookQueues(client, {
    maxDeliveries: MAX_DELIVERIES,
    retry: { backoff: 'exponential', delayMs: 50, maxDelayMs: 400 },
  });
});

afterEach(() => cleanup.run());
afterAll(() => clusterCleanup.run());

async function startIntake(publishTimeoutMs = 5_000) {
  const intake = await startWebhookIntake({ client, port: 0, publishTimeoutMs, log: memoryLogger() });
  cleanup.add(() => intake.close());
  return intake;
}

interface Attempt {
  customer: string;
  n: number;
  attempt: number;
  outcome: 'ok' | 'failed';
}

/** Wraps a processor to record every attempt and check no customer ever has two in progress. */
function recording(inner: ProcessWebhook, attempts: Attempt[], overlaps: string[]): ProcessWebhook {
  const busy = new Set<string>();
  return async (event) => {
    if (busy.has(event.customer))
      overlaps.push(`${event.customer} #${event.seq} while another was in progress`);
    busy.add(event.customer);
    const n = (jsonBody(event) as { n: number }).n;
    try {
      await new Promise((resolve) => setTimeout(resolve, 2)); // let a rival delivery show up, if any would
      await inner(event);
      attempts.push({ customer: event.customer, n, attempt: event.attempt, outcome: 'ok' });
    } catch (error) {
      attempts.push({ customer: event.customer, n, attempt: event.attempt, outcome: 'failed' });
      throw error;
    } finally {
      busy.delete(event.customer);
    }
  };
}

describe('webhook intake', () => {
  it('answers 202 only once the webhook is stored: readable from another client at once', async () => {
    const intake = await startIntake();
    const { client: reader } = await clientFor(cluster, cleanup);

    const outcome = await postWebhook(intake.url, 'acme', `confirm-${Date.now()}`, { n: 0, event: 'ping' });

    expect(outcome.status).toBe(202);
    const seq = outcome.reply.seq!;
    const [stored] = await reader.peek(WEBHOOK_QUEUE, { fromSeq: seq, max: 1 });
    expect(stored).toMatchObject({ seq, group: 'acme' });
    expect(JSON.parse(new TextDecoder().decode(stored!.bytes))).toEqual({ n: 0, event: 'ping' });
    await reader.purgeQueue(WEBHOOK_QUEUE);
  });

  it('answers 503 while no quorum can confirm, and stores the retried delivery once afterwards', async () => {
    const intake = await startIntake(1_500);
    const leader = await cluster.waitForLeader();
    const follower = cluster.nodes.find((node) => node.id !== leader.id)!;
    cleanup.add(async () => {
      for (const node of [leader, follower]) if (!node.process) await cluster.startNode(node.id);
      await cluster.waitForLeader();
    });
    await cluster.signal(leader.id, 'SIGKILL');
    await cluster.signal(follower.id, 'SIGKILL');
    const deliveryId = `no-quorum-${Date.now()}`;

    const refused = await postWebhook(intake.url, 'globex', deliveryId, { n: 0, event: 'order.created' });
    expect(refused.status).toBe(503);

    await cluster.startNode(leader.id);
    await cluster.startNode(follower.id);
    await cluster.waitForLeader();
    const accepted = await deliverWebhook(intake.url, 'globex', deliveryId, { n: 0, event: 'order.created' });
    expect(accepted.status).toBe(202);
    // The refused attempt may have been stored late (its publish kept trying): same key, one copy.
    const copies = (await client.peek(WEBHOOK_QUEUE)).filter(
      (m) => m.headers?.['delivery-id'] === deliveryId,
    );
    expect(copies.map((m) => m.seq)).toEqual([accepted.reply.seq]);
    await client.purgeQueue(WEBHOOK_QUEUE);
  });

  it('stores a delivery the provider sends twice only once', async () => {
    const intake = await startIntake();
    const deliveryId = `twice-${Date.now()}`;

    const first = await postWebhook(intake.url, 'initech', deliveryId, { n: 0 });
    const second = await postWebhook(intake.url, 'initech', deliveryId, { n: 0 });

    expect(first).toMatchObject({ status: 202, reply: { duplicate: false } });
    expect(second).toMatchObject({ status: 202, reply: { duplicate: true, seq: first.reply.seq } });
    await client.purgeQueue(WEBHOOK_QUEUE);
  });

  it('refuses bad requests with 4xx and stores nothing for them', async () => {
    const intake = await startIntake();
    const before = await client.queueStats(WEBHOOK_QUEUE);
    const post = (path: string, headers: Record<string, string>, body: string) =>
      fetch(`${intake.url}${path}`, { method: 'POST', headers, body }).then((res) => res.status);

    expect(await post('/webhooks/acme', {}, '{}')).toBe(400); // no delivery id
    expect(await post('/webhooks/acme', { 'x-delivery-id': 'a b' }, '{}')).toBe(400);
    expect(await post('/webhooks/bad%20name', { 'x-delivery-id': 'd1' }, '{}')).toBe(400);
    expect(await post('/webhooks/acme', { 'x-delivery-id': 'd1' }, 'x'.repeat(300_000))).toBe(413);
    expect(await post('/webhooks', { 'x-delivery-id': 'd1' }, '{}')).toBe(404);
    expect((await fetch(`${intake.url}/webhooks/acme`)).status).toBe(405);

    expect((await client.queueStats(WEBHOOK_QUEUE)).publishedCount).toBe(before.publishedCount);
  });

  it('keeps per-customer order across two processors, retries flaky attempts, dead-letters poison', async () => {
    const intake = await startIntake();
    const customers = ['acme', 'globex', 'initech', 'umbrella'];
    const perCustomer = 12;
    const poison = new Set(['globex/4', 'umbrella/9']);
    const attempts: Attempt[] = [];
    const overlaps: string[] = [];
    // Every third webhook fails its first attempt: a flaky downstream, made exact.
    const process = recording(
      demoProcessor({ shouldFail: (e) => e.attempt === 1 && (jsonBody(e) as { n: number }).n % 3 === 1 }),
      attempts,
      overlaps,
    );
    const faultLogs: FaultLog[] = [];
    for (let i = 0; i < 2; i++) {
      const { client: worker, faults } = await clientFor(cluster, cleanup);
      faultLogs.push(faults);
      const processor = await startWebhookProcessor({
        client: worker,
        process,
        prefetch: 8,
        log: memoryLogger(),
      });
      cleanup.add(() => processor.close());
    }

    // Like a provider: each customer's webhooks in order, customers in parallel.
    await Promise.all(
      customers.map(async (customer) => {
        for (let n = 0; n < perCustomer; n++) {
          const payload = {
            n,
            event: 'invoice.paid',
            ...(poison.has(`${customer}/${n}`) ? { poison: true } : {}),
          };
          const outcome = await deliverWebhook(
            intake.url,
            customer,
            `${customer}-${n}-${Date.now()}`,
            payload,
          );
          expect(outcome.status).toBe(202);
        }
      }),
    );
    await waitFor(async () => (await client.queueStats(WEBHOOK_QUEUE)).depth === 0, {
      timeoutMs: 30_000,
      what: 'every webhook processed or dead-lettered',
    });

    expect(overlaps).toEqual([]);
    for (const customer of customers) {
      const mine = attempts.filter((a) => a.customer === customer);
      // Attempts in arrival order: a retrying webhook holds back the customer's later ones.
      const order = mine.map((a) => a.n);
      expect(order, `${customer} attempt order`).toEqual([...order].sort((a, b) => a - b));
      const processed = mine.filter((a) => a.outcome === 'ok').map((a) => a.n);
      const expected = [...Array(perCustomer).keys()].filter((n) => !poison.has(`${customer}/${n}`));
      if (faultLogs.every((log) => log.events.length === 0)) expect(processed, customer).toEqual(expected);
      else expect([...new Set(processed)], customer).toEqual(expected);
      for (const a of mine.filter((x) => x.outcome === 'ok' && x.n % 3 === 1)) expect(a.attempt).toBe(2);
    }
    for (const key of poison) {
      const [customer, n] = key.split('/');
      const tries = attempts.filter((a) => a.customer === customer && a.n === Number(n));
      expect(tries.map((a) => `${a.attempt}:${a.outcome}`)).toEqual(['1:failed', '2:failed', '3:failed']);
    }
    const dead = await client.peek(WEBHOOK_DLQ);
    const deadKeys = dead.map(
      (m) => `${m.group}/${(JSON.parse(new TextDecoder().decode(m.bytes)) as { n: number }).n}`,
    );
    expect(deadKeys.sort()).toEqual([...poison].sort());
  });
});
