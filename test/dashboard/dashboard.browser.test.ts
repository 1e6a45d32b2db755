/**
 * Proves the dashboard works in a real browser (headless Chromium) against a real 3-node cluster
 * of `flotilla server` processes: the page shows the leader and the members; publishing through
 * the SDK changes the queue's depth on the page; dead-lettered messages can be peeked at and
 * redriven from the page (one, then all); after `kill -9` of the leader, a page served by a
 * survivor shows the new leader, and the page served by the dead leader says it lost contact and
 * links to the other nodes, where it works again. Leaves a screenshot in test-output/dashboard.png.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FlotillaClient as Client, connect } from '@flotilla/client';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterNode, REPO_ROOT, TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Fast polls keep the test short; the page's default is 1 s. */
const POLL_MS = 300;
const SCREENSHOT = join(REPO_ROOT, 'test-output/dashboard.png');

/** Wait until the text of `selector` on the page satisfies `accept`; returns that text. */
function waitForText(page: Page, selector: string, accept: (text: string) => boolean, what: string) {
  return waitFor(
    async () => {
      const text = (await page.locator(selector).first().textContent({ timeout: 1_000 }))?.trim() ?? '';
      return accept(text) ? text : false;
    },
    { timeoutMs: 15_000, intervalMs: 100, what: `${what} (${selector})` },
  );
}

const queueCell = (queue: string, field: string) =>
  `[data-testid="queue-row"][data-queue="${queue}"] [data-field="${field}"]`;

async function queueDepth(node: ClusterNode, queue: string): Promise<number> {
  const res = await fetch(`${node.httpUrl}/api/queues/${encodeURIComponent(queue)}`);
  if (!res.ok) throw new Error(`stats of ${queue}: HTTP ${res.status}`);
  return ((await res.json()) as { depth: number }).depth;
}

describe('the dashboard on a real cluster', () => {
  let cluster: TestCluster;
  let client: Client;
  let context: BrowserContext;
  let userDataDir: string;
  let leader: ClusterNode;
  let follower: ClusterNode;
  /** Served by a follower: it must survive the leader's death. */
  let page: Page;
  /** Served by the leader: it loses its node. */
  let leaderPage: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    cluster = await TestCluster.start({ size: 3 });
    leader = await cluster.waitForLeader();
    follower = cluster.nodes.find((n) => n.id !== leader.id)!;
    client = await connect({ servers: cluster.urls(), name: 'dashboard-test' });
    userDataDir = mkdtempSync(join(tmpdir(), 'flotilla-dashboard-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1400, height: 1000 },
    });
    page = await context.newPage();
    leaderPage = await context.newPage();
    for (const p of [page, leaderPage]) p.on('pageerror', (err) => pageErrors.push(err.message));
  });

  afterAll(async () => {
    await context?.close();
    await client?.close();
    await cluster?.stop();
    if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('loads on a follower and shows the leader and all members', async () => {
    const response = await page.goto(`${follower.httpUrl}/?pollMs=${POLL_MS}`);
    expect(response?.status(), 'the node serves the dashboard at /').toBe(200);
    await waitForText(page, '[data-testid="leader-id"]', (t) => t === leader.id, 'the leader');
    await waitForText(page, '[data-testid="serving-node"]', (t) => t === follower.id, 'the serving node');
    expect(await page.locator('[data-testid="node-row"]').count()).toBe(3);
    const leaderRow = page.locator(`[data-testid="node-row"][data-node="${leader.id}"] [data-field="role"]`);
    expect(await leaderRow.textContent()).toContain('leader');
    expect(await page.title()).toBe(`${follower.id} (follower) · Flotilla`);
  });

  it('shows the depth of a queue change as messages are published', async () => {
    await client.createQueue('orders.dlq');
    await client.createQueue('orders', { deadLetterQueue: 'orders.dlq', maxDeliveries: 1 });
    await client.publish('orders', { order: 1 });
    await waitForText(page, queueCell('orders', 'depth'), (t) => t === '1', 'orders depth 1');
    await Promise.all([2, 3, 4, 5].map((order) => client.publish('orders', { order })));
    await waitForText(page, queueCell('orders', 'depth'), (t) => t === '5', 'orders depth 5');
    await waitForText(page, queueCell('orders', 'publishRate'), (t) => t !== '—', 'a publish rate');
  });

  it('peeks at dead-lettered messages and redrives one, then all, from the page', async () => {
    const poison = await client.receive('orders', { max: 3, waitMs: 5_000 });
    expect(poison).toHaveLength(3);
    await Promise.all(poison.map((m) => m.nack())); // maxDeliveries 1: straight to orders.dlq
    await waitForText(page, queueCell('orders.dlq', 'depth'), (t) => t === '3', 'three dead letters');
    expect(await page.locator(queueCell('orders.dlq', 'name')).getAttribute('data-dlq')).toBe('true');

    await page.selectOption('[data-testid="peek-queue"]', 'orders.dlq');
    const rows = page.locator('[data-testid="message-row"]');
    await waitFor(async () => (await rows.count()) === 3, { what: 'the dead letters in the browser' });
    const bodies = await rows.locator('td.body').allTextContents();
    expect(bodies.sort()).toEqual(poison.map((m) => JSON.stringify(m.body)).sort());
    expect(await page.locator('[data-testid="redrive"]').isVisible()).toBe(true);

    const status = '[data-testid="messages-status"]';
    await page.click('[data-testid="redrive-one"]');
    await waitForText(page, status, (t) => t.startsWith('Moved 1 message from orders.dlq'), 'redrive one');
    await waitForText(page, queueCell('orders.dlq', 'depth'), (t) => t === '2', 'two dead letters left');
    await waitFor(async () => (await rows.count()) === 2, { what: 'the browser to drop the redriven one' });

    await page.click('[data-testid="redrive-all"]');
    await waitForText(page, status, (t) => t.startsWith('Moved 2 messages from orders.dlq'), 'redrive all');
    await waitForText(page, queueCell('orders.dlq', 'depth'), (t) => t === '0', 'an empty DLQ');
    await waitForText(page, queueCell('orders', 'depth'), (t) => t === '5', 'all messages back in orders');
    expect(await queueDepth(leader, 'orders.dlq')).toBe(0);
  });

  it('follows the new leader after kill -9 of the leader, on any surviving node', async () => {
    await leaderPage.goto(`${leader.httpUrl}/?pollMs=${POLL_MS}`);
    await waitForText(leaderPage, '[data-testid="leader-id"]', (t) => t === leader.id, 'the leader page');

    await cluster.signal(leader.id, 'SIGKILL');
    const next = await cluster.waitForLeader(20_000);
    expect(next.id).not.toBe(leader.id);
    await waitForText(page, '[data-testid="leader-id"]', (t) => t === next.id, 'the new leader');
    await waitForText(page, '[data-testid="connection"]', (t) => t.startsWith('Live'), 'a live page');

    // The dead node's page says so and links to the others; following a link works again.
    await waitFor(() => leaderPage.locator('[data-testid="lost-contact"]').isVisible(), {
      timeoutMs: 15_000,
      what: 'the lost-contact notice',
    });
    const link = leaderPage.locator('#lost-links a', { hasText: next.id });
    await link.click();
    await waitForText(
      leaderPage,
      '[data-testid="serving-node"]',
      (t) => t === next.id,
      'the page on the new leader',
    );
    await waitForText(leaderPage, '[data-testid="leader-id"]', (t) => t === next.id, 'the new leader');

    mkdirSync(join(REPO_ROOT, 'test-output'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
