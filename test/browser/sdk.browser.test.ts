/**
 * Proves the SDK works in a real browser: it bundles for the browser platform with no `ws` or
 * `node:` imports, and a page in headless Chromium connects to a real 3-node cluster of `flotilla
 * server` processes, follows from a follower to the leader, creates a queue, publishes (bytes, a
 * string, a value) and consumes through the bundle, over the browser's own WebSocket. The
 * cluster's own HTTP API confirms the page's acks.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterNode, TestCluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

/** Acked messages of `queue` as the node's replica counts them. */
async function ackedCount(node: ClusterNode, queue: string): Promise<number> {
  const res = await fetch(`${node.httpUrl}/api/queues/${encodeURIComponent(queue)}`);
  if (!res.ok) throw new Error(`stats of ${queue} on ${node.id}: HTTP ${res.status}`);
  return ((await res.json()) as { ackedCount: number }).ackedCount;
}

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

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Bundles an entry point as a browser ES module, resolving workspace packages to their sources. */
async function bundle(entry: string, external: string[] = []): Promise<{ code: string; metafile: Metafile }> {
  const result = await build({
    entryPoints: [here(entry)],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    external,
    alias: { '@flotilla/shared': here('../../packages/shared/src/index.ts') },
  });
  expect(result.errors).toEqual([]);
  return { code: result.outputFiles[0]!.text, metafile: result.metafile };
}

/** The page: an import map sends `@flotilla/client` to the SDK bundle, then the scenario loads. */
const PAGE = `<!doctype html>
<title>flotilla sdk</title>
<script type="importmap">{"imports": {"@flotilla/client": "/sdk.js"}}</script>
<script type="module">
  import { run } from '/scenario.js';
  window.flotillaRun = run;
</script>`;

/** Serves the page at /, the SDK at /sdk.js and the scenario at /scenario.js. */
async function serve(files: { sdk: string; scenario: string }): Promise<{ server: Server; origin: string }> {
  const server = createServer((request, response) => {
    const script =
      request.url === '/sdk.js' ? files.sdk : request.url === '/scenario.js' ? files.scenario : null;
    response.writeHead(200, { 'content-type': script === null ? 'text/html' : 'text/javascript' });
    response.end(script ?? PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, origin: `http://127.0.0.1:${port}` };
}

describe('the SDK in a browser', () => {
  let cluster: TestCluster;
  let sdk: { code: string; metafile: Metafile };
  let http: { server: Server; origin: string };
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    sdk = await bundle('../../packages/client/src/index.ts');
    const scenario = await bundle('./scenario.ts', ['@flotilla/client']);
    cluster = await TestCluster.start({ size: 3 });
    await cluster.waitForLeader();
    http = await serve({ sdk: sdk.code, scenario: scenario.code });
    userDataDir = await mkdtemp(join(tmpdir(), 'flotilla-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_FLAGS,
    });
  });

  afterAll(async () => {
    await context?.close();
    await new Promise((resolve) => http?.server.close(resolve));
    await cluster?.stop();
    if (userDataDir !== undefined) await rm(userDataDir, { recursive: true, force: true });
  });

  it('bundles without ws or node: imports', () => {
    const inputs = Object.keys(sdk.metafile.inputs);
    expect(inputs.filter((path) => /node_modules[/\\]ws[/\\]|transport-node/.test(path))).toEqual([]);
    const externalImports = Object.values(sdk.metafile.outputs).flatMap((output) => output.imports);
    expect(externalImports.filter((i) => i.path === 'ws' || i.path.startsWith('node:'))).toEqual([]);
    expect(sdk.code).not.toMatch(/from\s*["'](ws|node:[^"']*)["']|require\(\s*["'](ws|node:)/);
  });

  it('publishes and consumes from a page in headless Chromium, following a follower to the leader', async () => {
    const leader = await cluster.waitForLeader();
    // A follower's URL first: the page's SDK must move to the leader by itself.
    const servers = [...cluster.nodes.filter((n) => n.id !== leader.id), leader].map((n) => n.url);
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${http.origin}/`);
    await page.waitForFunction('typeof window.flotillaRun === "function"');
    const result = await page.evaluate(`window.flotillaRun(${JSON.stringify(servers)})`);
    expect(pageErrors).toEqual([]);
    expect(result).toEqual({
      seqs: [1, 2, 3],
      bodies: [[1, 2, 3], 'hello from the page', { n: 1, list: ['a'] }],
      nodeId: leader.id,
      typedError: 'true:QUEUE_NOT_FOUND',
      status: 'closed',
    });
    await waitFor(async () => (await ackedCount(leader, 'browser')) === 3, {
      timeoutMs: 5_000,
      what: "the page's three acks on the leader",
    });
    await page.close();
  });
});
