/**
 * The built `flotilla` command (`packages/cli/dist/main.js`) against a real 3-node cluster.
 * Proves: `status` names the leader and every node; `queue create/list/stats/peek/purge/delete`
 * change and show the real queue; `publish --count` is confirmed in full and re-running it with
 * the same idempotency key stores nothing twice; `consume --count --json` prints what was
 * published; `bench --messages 2000` runs and cleans up its scratch queue; and scripts can rely on
 * the exit codes: 1 for a failed operation, 4 for a missing queue, 3 for an unreachable cluster.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, TestCluster } from '../support/cluster.js';
import { uniqueQueue } from './helpers.js';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args`; never rejects (the exit code is part of the result). */
function cli(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('FLOTILLA_')) env[key] = value;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_MAIN, ...args], { env, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the flotilla command against a real cluster', () => {
  let cluster: TestCluster;
  let servers: string[];

  /** The CLI with `--servers` pointing at the cluster. */
  const run = (...args: string[]) => cli([...args, '--servers', servers.join(',')]);

  beforeAll(async () => {
    cluster = await TestCluster.start({ size: 3 });
    await cluster.waitForLeader();
    servers = cluster.urls();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('status shows every node and marks the leader', async () => {
    const leader = await cluster.waitForLeader();
    const json = await run('status', '--json');
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const view = JSON.parse(json.stdout) as { leaderId: string; nodes: { id: string; role: string }[] };
    expect(view.leaderId).toBe(leader.id);
    expect(view.nodes.map((n) => `${n.id}:${n.role}`).sort()).toEqual(
      cluster.nodes.map((n) => `${n.id}:${n.id === leader.id ? 'leader' : 'follower'}`).sort(),
    );
    const table = await run('status');
    expect(table.code).toBe(0);
    for (const node of cluster.nodes) expect(table.stdout).toContain(node.id);
    expect(table.stdout).toContain('*');
  });

  it('creates, lists, shows, peeks, purges and deletes a queue', async () => {
    const queue = uniqueQueue('cli-admin');
    const created = await run(
      'queue',
      'create',
      queue,
      '--max-deliveries',
      '3',
      '--visibility-timeout-ms',
      '5000',
    );
    expect(created.code).toBe(0);
    expect(created.stdout).toContain(`created queue ${queue}`);

    const list = await run('queue', 'list', '--json');
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((q) => q.name)).toContain(queue);

    expect(await run('publish', queue, 'first message')).toMatchObject({ code: 0 });
    expect(await run('publish', queue, 'second message')).toMatchObject({ code: 0 });
    const stats = await run('queue', 'stats', queue, '--json');
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({
      name: queue,
      depth: 2,
      publishedCount: 2,
      options: { maxDeliveries: 3, visibilityTimeoutMs: 5000 },
    });

    const peek = await run('queue', 'peek', queue, '--json');
    expect(peek.code).toBe(0);
    expect(jsonLines(peek.stdout).map((m) => [m.seq, m.body])).toEqual([
      [1, 'first message'],
      [2, 'second message'],
    ]);

    const purge = await run('queue', 'purge', queue, '--json');
    expect(purge.code).toBe(0);
    expect(JSON.parse(purge.stdout)).toEqual({ queue, purged: 2 });
    expect(JSON.parse((await run('queue', 'stats', queue, '--json')).stdout)).toMatchObject({ depth: 0 });

    expect(await run('queue', 'delete', queue)).toMatchObject({ code: 0 });
    const after = await run('queue', 'list', '--json');
    expect((JSON.parse(after.stdout) as { name: string }[]).map((q) => q.name)).not.toContain(queue);
  });

  it('publishes --count messages confirmed, once per idempotency key, and consumes them as JSON', async () => {
    const queue = uniqueQueue('cli-data');
    expect((await run('queue', 'create', queue)).code).toBe(0);
    const publish = ['publish', queue, 'payload', '--count', '500', '--idempotency-key', 'batch', '--json'];
    const first = await run(...publish);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({
      queue,
      requested: 500,
      confirmed: 500,
      duplicates: 0,
      firstSeq: 1,
      lastSeq: 500,
    });
    const again = await run(...publish);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ confirmed: 500, duplicates: 500 });

    const consume = await run('consume', queue, '--count', '500', '--json', '--timeout-ms', '30000');
    expect(consume.code).toBe(0);
    const messages = jsonLines(consume.stdout);
    expect(messages).toHaveLength(500);
    expect(new Set(messages.map((m) => m.seq)).size).toBe(500);
    expect(messages.every((m) => m.queue === queue && m.body === 'payload' && m.encoding === 'text')).toBe(
      true,
    );
    const stats = JSON.parse((await run('queue', 'stats', queue, '--json')).stdout);
    expect(stats).toMatchObject({ depth: 0, publishedCount: 500, ackedCount: 500 });
  });

  it('bench --messages 2000 publishes and drains, then removes its scratch queue', async () => {
    const bench = await run('bench', '--messages', '2000', '--json');
    expect(bench.code).toBe(0);
    const result = JSON.parse(bench.stdout) as {
      queue: string;
      messages: number;
      publish: { msgsPerSec: number; confirmLatencyMs: { p50: number; p99: number } };
      consume: { msgsPerSec: number };
    };
    expect(result.messages).toBe(2000);
    expect(result.publish.msgsPerSec).toBeGreaterThan(0);
    expect(result.consume.msgsPerSec).toBeGreaterThan(0);
    expect(result.publish.confirmLatencyMs.p99).toBeGreaterThanOrEqual(result.publish.confirmLatencyMs.p50);
    console.log(
      `flotilla bench --messages 2000: publish ${Math.round(result.publish.msgsPerSec)} msgs/s ` +
        `(p50 ${result.publish.confirmLatencyMs.p50} ms, p99 ${result.publish.confirmLatencyMs.p99} ms), ` +
        `consume ${Math.round(result.consume.msgsPerSec)} msgs/s`,
    );
    const list = JSON.parse((await run('queue', 'list', '--json')).stdout) as { name: string }[];
    expect(list.map((q) => q.name)).not.toContain(result.queue);
  });

  it('exits 4 for a missing queue', async () => {
    for (const args of [
      ['queue', 'stats', 'no-such-queue'],
      ['publish', 'no-such-queue', 'hello'],
      ['queue', 'delete', 'no-such-queue'],
    ]) {
      const result = await run(...args);
      expect(result.code, args.join(' ')).toBe(4);
      expect(result.stderr).toContain('QUEUE_NOT_FOUND');
      expect(result.stdout).toBe('');
    }
  });

  it('exits 1 when an operation fails: a taken name, or fewer messages than --count in time', async () => {
    const queue = uniqueQueue('cli-fail');
    expect((await run('queue', 'create', queue)).code).toBe(0);
    const taken = await run('queue', 'create', queue);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('QUEUE_EXISTS');
    expect((await run('publish', queue, 'only one')).code).toBe(0);
    const short = await run('consume', queue, '--count', '2', '--timeout-ms', '1000', '--json');
    expect(short.code).toBe(1);
    expect(jsonLines(short.stdout).map((m) => m.body)).toEqual(['only one']);
  });

  it('exits 3 when no node can be reached', async () => {
    const nowhere = `ws://127.0.0.1:${await deadPort()}`;
    for (const args of [['queue', 'list'], ['status']]) {
      const result = await cli([...args, '--servers', nowhere, '--connect-timeout-ms', '1000']);
      expect(result.code, args.join(' ')).toBe(3);
      expect(result.stderr).toMatch(/^flotilla: /);
    }
  });
});
