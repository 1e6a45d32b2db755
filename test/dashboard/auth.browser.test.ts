/**
 * Proves the dashboard's bearer-token flow in headless Chromium, against the real HTTP frontend
 * and token checks over a stand-in for the node behind them: without a token the page says the
 * cluster needs one and opens the token form; with a valid token (manage only, an operator's) it
 * goes live, lists the queues and sends the token on every call; the token survives a reload of
 * the tab but not a new tab (sessionStorage); "Forget" drops it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_QUEUE_OPTIONS, type QueueStats } from '@flotilla/shared';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenAuthenticator } from '../../packages/node/src/auth/tokens.js';
import type { NodeStatus } from '../../packages/node/src/cluster/types.js';
import type { HttpApi } from '../../packages/node/src/http/api.js';
import { HttpFrontend } from '../../packages/node/src/http/server.js';
import { silentLogger } from '../../packages/node/src/runtime/logger.js';
import { REPO_ROOT } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'dashboard-test-token';
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

const status: NodeStatus = {
  nodeId: 'n1',
  role: 'leader',
  term: 2,
  leaderId: 'n1',
  leaderAddress: '127.0.0.1:1',
  commitIndex: 5,
  appliedIndex: 5,
  lastIndex: 5,
  snapshotIndex: 0,
  members: [{ id: 'n1', address: '127.0.0.1:1', voter: true, matchIndex: 5, connected: true }],
};

const orders: QueueStats = {
  name: 'orders',
  depth: 3,
  ready: 3,
  inFlight: 0,
  delayed: 0,
  totalBytes: 30,
  publishedCount: 3,
  deliveredCount: 0,
  ackedCount: 0,
  deadLetteredCount: 0,
  oldestMessageAgeMs: 1_000,
  options: DEFAULT_QUEUE_OPTIONS,
};

/** Only what the page reads; mutations are not part of this test. */
const standIn = {
  nodeId: 'n1',
  health: () => ({ ok: true }),
  ready: () => ({ ready: true }),
  cluster: () => status,
  queues: () => [orders],
  queue: (name: string) => (name === 'orders' ? orders : null),
  peek: () => null,
} as unknown as HttpApi;

describe('the dashboard with token authentication', () => {
  let frontend: HttpFrontend;
  let origin: string;
  let context: BrowserContext;
  let userDataDir: string;
  const authorizations: (string | undefined)[] = [];

  beforeAll(async () => {
    const tokens = TokenAuthenticator.fromJson({
      // An operator's token: manage only, which must be enough to see every queue.
      tokens: [{ name: 'ops', token: TOKEN, permissions: [{ queues: '*', actions: ['manage'] }] }],
    });
    frontend = new HttpFrontend({
      api: standIn,
      upgrades: {},
      logger: silentLogger,
      staticDir: join(REPO_ROOT, 'packages/node/dashboard'),
      authenticate: (token) => {
        authorizations.push(token);
        return tokens.authenticate(token);
      },
    });
    const { port } = await frontend.listen('127.0.0.1', 0);
    origin = `http://127.0.0.1:${port}`;
    userDataDir = mkdtempSync(join(tmpdir(), 'flotilla-dashboard-auth-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_FLAGS,
    });
  });

  afterAll(async () => {
    await context?.close();
    await frontend?.close();
    if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true });
  });

  const state = (page: Page, expected: string) =>
    waitFor(async () => (await page.getAttribute('[data-testid="connection"]', 'data-state')) === expected, {
      timeoutMs: 10_000,
      what: `connection state ${expected}`,
    });

  it('asks for a token, uses it, keeps it for the tab only, and forgets it on request', async () => {
    const page = await context.newPage();
    await page.goto(`${origin}/?pollMs=200`);
    await state(page, 'auth');
    expect(await page.locator('#auth').getAttribute('open')).not.toBeNull();
    expect(await page.textContent('[data-testid="leader-id"]')).toBe('—');

    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button[type="submit"]');
    await state(page, 'live');
    expect(await page.textContent('[data-testid="leader-id"]')).toBe('n1');
    expect(authorizations.at(-1)).toBe(TOKEN);
    await page.waitForSelector('[data-testid="queue-row"][data-queue="orders"]', { timeout: 10_000 });

    await page.reload();
    await state(page, 'live');

    const otherTab = await context.newPage();
    await otherTab.goto(`${origin}/?pollMs=200`);
    await state(otherTab, 'auth');
    await otherTab.close();

    await page.click('#auth summary'); // the form is folded away while the token works
    expect(await page.inputValue('#token-input')).toBe(TOKEN);
    await page.click('#token-forget');
    await state(page, 'auth');
    await page.close();
  });
});
