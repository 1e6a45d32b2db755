/**
 * Proves the client commands end to end against the SDK's fake cluster (three nodes, the leader
 * not the first): what `queue`, `publish`, `consume`, `status` and `bench` print, what they change
 * in the broker, and the exit codes scripts rely on (2 usage, 3 unreachable, 4 not found, 5 auth).
 */

import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeCluster } from '../../client/src/testing/fake-server.js';
import { runIn, type TestContext, testContext } from './testing/context.js';

let cluster: FakeCluster;
let ctx: TestContext;

async function start(options: Parameters<typeof FakeCluster.start>[0] = {}): Promise<void> {
  cluster = await FakeCluster.start({ nodeIds: ['n1', 'n2', 'n3'], leaderId: 'n2', ...options });
  ctx = testContext({ env: { FLOTILLA_SERVERS: cluster.urls.join(',') }, stdin: 'from stdin\n' });
}

const run = (...argv: string[]) => runIn(ctx, argv);
const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
const body = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('flotilla client commands', () => {
  beforeEach(() => start());
  afterEach(async () => {
    await ctx.closeClients();
    await cluster.stop();
  });

  it('queue create sends the options given and prints the queue options', async () => {
    const dlq = await run('queue', 'create', 'emails.dlq');
    expect(dlq).toMatchObject({ code: 0, stderr: '' });
    const result = await run(
      'queue',
      'create',
      'emails',
      '--max-deliveries',
      '5',
      '--dead-letter-queue',
      'emails.dlq',
      '--retry-backoff',
      'exponential',
      '--retry-delay-ms',
      '1000',
      '--retry-max-delay-ms',
      '60000',
      '--max-bytes',
      '1MiB',
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('created queue emails');
    expect(result.stdout).toMatch(/dead-letter queue\s*│\s*emails\.dlq/);
    expect(result.stdout).toMatch(/retry\s*│\s*exponential 1 s \.\. 1 m/);
    const sent = cluster.requestsOf('createQueue').at(-1)!.request.params;
    expect(sent).toEqual({
      name: 'emails',
      options: {
        maxDeliveries: 5,
        deadLetterQueue: 'emails.dlq',
        retry: { backoff: 'exponential', delayMs: 1000, maxDelayMs: 60000 },
        maxBytes: 1024 * 1024,
      },
    });
  });

  it('queue create --json prints the options as JSON; a taken name fails with exit 1', async () => {
    const created = await run('queue', 'create', 'q', '--priority-levels', '3', '--json');
    expect(created.code).toBe(0);
    const parsed = JSON.parse(created.stdout) as { name: string; options: { priorityLevels: number } };
    expect(parsed.name).toBe('q');
    expect(parsed.options.priorityLevels).toBe(3);
    const again = await run('queue', 'create', 'q');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('QUEUE_EXISTS');
  });

  it('publish --count stores N messages, prints a summary, and queue list/stats show them', async () => {
    await run('queue', 'create', 'load');
    const published = await run('publish', 'load', '--count', '250', '--size', '64', '--json');
    expect(published.code).toBe(0);
    const summary = JSON.parse(published.stdout) as Record<string, number>;
    expect(summary).toMatchObject({
      requested: 250,
      confirmed: 250,
      duplicates: 0,
      firstSeq: 1,
      lastSeq: 250,
    });
    const stored = cluster.broker.stored('load');
    expect(stored).toHaveLength(250);
    expect(stored.every((m) => m.body.length === 64)).toBe(true);

    const list = await run('queue', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/load\s*│\s*250\s*│\s*250\s*│\s*0/);
    const stats = await run('queue', 'stats', 'load', '--json');
    expect(JSON.parse(stats.stdout)).toMatchObject({
      name: 'load',
      depth: 250,
      ready: 250,
      totalBytes: 250 * 64,
    });
  });

  it('publish of one message prints its seq and carries the options given', async () => {
    await run('queue', 'create', 'emails', '--priority-levels', '2');
    const result = await run(
      'publish',
      'emails',
      'hello',
      '--header',
      'trace=abc',
      '--header',
      'kind=welcome',
      '--group',
      'customer-42',
      '--priority',
      '1',
      '--idempotency-key',
      'k1',
    );
    expect(result).toMatchObject({ code: 0, stdout: 'published #1 to emails\n' });
    const [message] = cluster.requestsOf('publish').at(-1)!.request.params.messages;
    expect(message).toMatchObject({
      headers: { trace: 'abc', kind: 'welcome' },
      group: 'customer-42',
      priority: 1,
      idempotencyKey: 'k1',
    });
    expect(body(message!.body)).toBe('hello');
    const duplicate = await run('publish', 'emails', 'hello', '--idempotency-key', 'k1', '--json');
    expect(JSON.parse(duplicate.stdout)).toEqual({ queue: 'emails', seq: 1, duplicate: true });
  });

  it('publish - sends stdin as the body', async () => {
    await run('queue', 'create', 'q');
    const result = await run('publish', 'q', '-');
    expect(result.code).toBe(0);
    expect(body(cluster.broker.stored('q')[0]!.body)).toBe('from stdin\n');
  });

  it('consume --count --json prints each message as a JSON line and acks it', async () => {
    await run('queue', 'create', 'q');
    await run('publish', 'q', 'first');
    await run('publish', 'q', 'second');
    await run('publish', 'q', 'third');
    const result = await run('consume', 'q', '--count', '2', '--json');
    expect(result.code).toBe(0);
    const lines = jsonLines(result.stdout);
    expect(lines.map((m) => [m.seq, m.deliveryCount, m.encoding, m.body])).toEqual([
      [1, 1, 'text', 'first'],
      [2, 1, 'text', 'second'],
    ]);
    const acked = cluster.requestsOf('ack').flatMap((r) => r.request.params.items.map((item) => item.seq));
    expect(acked.sort()).toEqual([1, 2]);
    expect(cluster.broker.stored('q').map((m) => m.seq)).toEqual([3]);
  });

  it('consume prints a human line per message: seq, delivery count, text or hex', async () => {
    await run('queue', 'create', 'q');
    await run('publish', 'q', 'hello world', '--header', 'a=b');
    await run('publish', 'q', '--size', '40');
    const result = await run('consume', 'q', '--count', '2');
    expect(result.code).toBe(0);
    const [text, binary] = result.stdout.trim().split('\n');
    expect(text).toBe('#1  delivery 1  a=b  hello world');
    expect(binary).toMatch(/^#2 {2}delivery 1 {2}<40 bytes> [0-9a-f]{64}\.\.\.$/);
  });

  it('consume --no-ack gives the messages back', async () => {
    await run('queue', 'create', 'q');
    await run('publish', 'q', 'keep me');
    const result = await run('consume', 'q', '--count', '1', '--no-ack');
    expect(result.code).toBe(0);
    expect(cluster.requestsOf('ack')).toHaveLength(0);
    expect(cluster.requestsOf('nack').length).toBeGreaterThan(0);
    const stats = await run('queue', 'stats', 'q', '--json');
    expect(JSON.parse(stats.stdout)).toMatchObject({ depth: 1, inFlight: 0, ackedCount: 0 });
  });

  it('consume stops at --timeout-ms: exit 1 when fewer than --count arrived, 0 without --count', async () => {
    await run('queue', 'create', 'q');
    await run('publish', 'q', 'only one');
    const short = await run('consume', 'q', '--count', '3', '--timeout-ms', '200');
    expect(short.code).toBe(1);
    expect(short.stdout).toContain('only one');
    expect(short.stderr).toContain('got 1 of 3 messages');
    const open = await run('consume', 'q', '--timeout-ms', '100');
    expect(open).toMatchObject({ code: 0, stdout: '' });
  });

  it('consume stops on Ctrl-C with exit 0 when no --count was given', async () => {
    await run('queue', 'create', 'q');
    const running = run('consume', 'q');
    // The command registers its signal handler once subscribed: wait for the subscription.
    for (let deadline = Date.now() + 5000; cluster.requestsOf('subscribe').length === 0; ) {
      if (Date.now() > deadline) throw new Error('consume never subscribed');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    ctx.signal('SIGINT');
    expect((await running).code).toBe(0);
    expect(ctx.signalListeners).toBe(0);
  });

  it('peek shows stored messages without leasing them', async () => {
    await run('queue', 'create', 'q');
    await run('publish', 'q', 'a');
    await run('publish', 'q', 'b');
    const table = await run('queue', 'peek', 'q');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/│\s*1\s*│\s*0\s*│.*│\s*a\s*│/);
    const lines = await run('queue', 'peek', 'q', '--from-seq', '2', '--json');
    expect(jsonLines(lines.stdout).map((m) => m.body)).toEqual(['b']);
    expect(cluster.broker.stats('q').inFlight).toBe(0);
  });

  it('update, purge and delete change the queue and say what they did', async () => {
    await run('queue', 'create', 'q');
    const updated = await run('queue', 'update', 'q', '--visibility-timeout-ms', '5000', '--json');
    expect(JSON.parse(updated.stdout).options.visibilityTimeoutMs).toBe(5000);
    await run('publish', 'q', '--count', '3');
    expect(await run('queue', 'purge', 'q')).toMatchObject({ code: 0, stdout: 'purged 3 messages from q\n' });
    expect(await run('queue', 'delete', 'q', '--json')).toMatchObject({
      code: 0,
      stdout: '{"deleted":"q"}\n',
    });
    expect(cluster.broker.listQueues()).toEqual([]);
  });

  it('peek shows where dead-lettered messages came from; redrive moves them back', async () => {
    await run('queue', 'create', 'q.dlq');
    await run('queue', 'create', 'q', '--max-deliveries', '1', '--dead-letter-queue', 'q.dlq');
    await run('publish', 'q', 'poison');
    // Delivered once and given back: with maxDeliveries 1 it goes to the dead-letter queue.
    await run('consume', 'q', '--count', '1', '--no-ack');
    expect(cluster.broker.stats('q.dlq').depth).toBe(1);
    const peeked = jsonLines((await run('queue', 'peek', 'q.dlq', '--json')).stdout);
    expect(peeked[0]).toMatchObject({
      deliveryCount: 0,
      deadLetter: { queue: 'q', seq: 1, deliveryCount: 1, reason: 'max-deliveries' },
    });
    expect((await run('queue', 'peek', 'q.dlq')).stdout).toContain('q#1 max-deliveries after 1 delivery');
    const moved = await run('queue', 'redrive', 'q.dlq', '--json');
    expect(JSON.parse(moved.stdout)).toEqual({ dlq: 'q.dlq', target: null, moved: 1 });
    expect(cluster.broker.stats('q').depth).toBe(1);
  });

  it('status falls back to the client view when no node serves HTTP', async () => {
    const result = await run('status', '--json');
    expect(result.code).toBe(0);
    const view = JSON.parse(result.stdout) as { source: string; leaderId: string; nodes: { id: string }[] };
    expect(view.source).toBe('client');
    expect(view.leaderId).toBe('n2');
    expect(view.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
  });

  it('bench publishes, drains and deletes its scratch queue', async () => {
    const result = await run(
      'bench',
      '--messages',
      '300',
      '--size',
      '32',
      '--window',
      '50',
      '--consumers',
      '2',
      '--json',
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      messages: number;
      publish: { msgsPerSec: number; confirmLatencyMs: { p50: number; p99: number } };
      consume: { msgsPerSec: number };
    };
    expect(report.messages).toBe(300);
    expect(report.publish.confirmLatencyMs.p99).toBeGreaterThanOrEqual(report.publish.confirmLatencyMs.p50);
    expect(report.consume.msgsPerSec).toBeGreaterThan(0);
    const publishes = cluster.requestsOf('publish').flatMap((r) => r.request.params.messages);
    expect(publishes).toHaveLength(300);
    expect(cluster.broker.listQueues()).toEqual([]);
  });
});

describe('flotilla exit codes', () => {
  afterEach(async () => {
    await ctx.closeClients();
    await cluster.stop();
  });

  it('4 for a queue that does not exist', async () => {
    await start();
    for (const argv of [
      ['queue', 'stats', 'nope'],
      ['publish', 'nope', 'x'],
      ['consume', 'nope', '--count', '1', '--timeout-ms', '2000'],
    ]) {
      const result = await run(...argv);
      expect(result.code, argv.join(' ')).toBe(4);
      expect(result.stderr, argv.join(' ')).toContain('QUEUE_NOT_FOUND');
    }
  });

  it('2 for bad options, before anything is sent', async () => {
    await start();
    const cases = [
      ['queue', 'create', 'q', '--max-deliveries', 'many'],
      ['queue', 'create', 'q', '--overflow', 'sometimes'],
      ['queue', 'create', 'q', '--retry-backoff', 'exponential'],
      ['queue', 'update', 'q'],
      ['publish', 'q'],
      ['publish', 'q', '--count', '0'],
      ['consume', 'q', '--prefetch', '0'],
      ['queue', 'frobnicate'],
      ['status', '--servers', 'ftp://x'],
    ];
    for (const argv of cases) {
      const result = await run(...argv);
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.stderr, argv.join(' ')).not.toBe('');
    }
    expect(cluster.requests).toEqual([]);
  });

  it('2 names the flag when the protocol refuses a value', async () => {
    await start();
    const result = await run('queue', 'create', 'q', '--visibility-timeout-ms', '0');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--visibility-timeout-ms');
  });

  it('3 when no node can be reached', async () => {
    await start();
    const port = await deadPort();
    const result = await run(
      'queue',
      'list',
      '--servers',
      `127.0.0.1:${port}`,
      '--connect-timeout-ms',
      '300',
    );
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('UNAVAILABLE');
    expect(result.stderr).toContain(`ws://127.0.0.1:${port}/client`);
  });

  it('5 for a token the cluster does not accept; 0 with a good one from FLOTILLA_TOKEN', async () => {
    await start({ tokens: ['s3cret'] });
    const refused = await run('queue', 'list', '--token', 'wrong');
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain('UNAUTHORIZED');
    ctx.env.FLOTILLA_TOKEN = 's3cret';
    expect((await run('queue', 'list')).code).toBe(0);
  });
});
