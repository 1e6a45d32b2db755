/**
 * Proves deploy/docker-compose.yml's configuration works as a cluster, without Docker: three real
 * `flotilla server` processes get exactly the environment Compose would give the containers, with
 * only what Docker itself provides rewritten (service host names → 127.0.0.1, the container port →
 * a free loopback port, the volume → a temporary directory). They must elect one leader and serve a
 * publish and a consume through the SDK, with every replica applying the ack.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@flotilla/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN } from '../support/cluster.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { loadCompose, parsePeerList, serviceEnvironment, splitHostPort } from './compose.js';

interface Node {
  name: string;
  port: number;
  env: Record<string, string>;
  logFile: string;
  child: ChildProcess | null;
}

/**
 * The container environment of one service, with Docker's part done by hand: names of services
 * resolve to loopback, each container's port becomes that node's free port, its volume a directory.
 */
function localEnvironment(
  composeEnv: Record<string, string>,
  ports: Map<string, number>,
  dataDir: string,
): Record<string, string> {
  const containerPort = splitHostPort(composeEnv.FLOTILLA_LISTEN!).port;
  const local = (address: string) => {
    const { host, port } = splitHostPort(address);
    const hostPort = ports.get(host);
    if (hostPort === undefined || port !== containerPort) {
      throw new Error(`${address} is not a service of the compose file at its listening port`);
    }
    return `127.0.0.1:${hostPort}`;
  };
  const peers = [...parsePeerList(composeEnv.FLOTILLA_PEERS!)].map(([id, addr]) => `${id}=${local(addr)}`);
  return {
    ...composeEnv,
    FLOTILLA_LISTEN: local(`${composeEnv.FLOTILLA_NODE_ID}:${containerPort}`),
    FLOTILLA_ADVERTISE: local(composeEnv.FLOTILLA_ADVERTISE!),
    FLOTILLA_PEERS: peers.join(','),
    FLOTILLA_DATA_DIR: dataDir,
  };
}

function tail(node: Node): string {
  try {
    return readFileSync(node.logFile, 'utf8').trimEnd().split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}

async function getJson<T>(node: Node, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${node.port}${path}`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${path} on ${node.name}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

describe('the compose file’s environment as a real cluster', () => {
  const compose = loadCompose();
  const root = mkdtempSync(join(tmpdir(), 'flotilla-compose-'));
  let nodes: Node[] = [];

  beforeAll(async () => {
    const names = Object.keys(compose.services);
    const free = await freePorts(names.length);
    const ports = new Map(names.map((name, i) => [name, free[i]!]));
    nodes = names.map((name) => ({
      name,
      port: ports.get(name)!,
      env: localEnvironment(serviceEnvironment(compose.services[name]!), ports, join(root, name)),
      logFile: join(root, `${name}.log`),
      child: null,
    }));
    for (const node of nodes) {
      mkdirSync(node.env.FLOTILLA_DATA_DIR!, { recursive: true });
      const log = openSync(node.logFile, 'a');
      // Only the compose environment (plus PATH): nothing from this process leaks into the config.
      node.child = spawn(process.execPath, [CLI_MAIN, 'server'], {
        env: { PATH: process.env.PATH ?? '', ...node.env },
        stdio: ['ignore', log, log],
      });
      closeSync(log);
      node.child.once('exit', () => {
        node.child = null;
      });
    }
    for (const node of nodes) {
      await waitFor(
        async () => {
          if (!node.child) throw new Error(`${node.name} exited:\n${tail(node)}`);
          return (await getJson<{ status: string }>(node, '/health')).status === 'ok';
        },
        { timeoutMs: 20_000, what: `${node.name} to answer /health` },
      );
    }
  });

  afterAll(async () => {
    await Promise.all(
      nodes.map(async (node) => {
        const child = node.child;
        if (!child) return;
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(root, { recursive: true, force: true });
  });

  it('keeps every compose variable and rewrites only addresses and the data directory', () => {
    const composeEnv = serviceEnvironment(compose.services.n1!);
    const n1 = nodes.find((n) => n.name === 'n1')!;
    expect(Object.keys(n1.env).sort()).toEqual(Object.keys(composeEnv).sort());
    for (const key of ['FLOTILLA_NODE_ID', 'FLOTILLA_CLUSTER_SECRET', 'FLOTILLA_LOG_LEVEL']) {
      expect(n1.env[key]).toBe(composeEnv[key]);
    }
  });

  it('elects one leader that every node names', async () => {
    const leader = await waitFor(
      async () => {
        const views = await Promise.all(
          nodes.map((n) => getJson<{ role: string; leaderId: string | null }>(n, '/api/cluster')),
        );
        const named = new Set(views.map((v) => v.leaderId));
        const [id] = named;
        const leaders = views.filter((v) => v.role === 'leader');
        return named.size === 1 && id && leaders.length === 1 ? id : false;
      },
      { timeoutMs: 20_000, what: 'one leader named by all three nodes' },
    );
    expect(nodes.map((n) => n.name)).toContain(leader);
  });

  it('serves a publish and a consume through the SDK, and every replica applies the ack', async () => {
    const client = await connect({
      servers: nodes.map((n) => `ws://127.0.0.1:${n.port}`),
      name: 'compose-test',
    });
    try {
      await client.createQueue('compose-check');
      const { seq } = await client.publish('compose-check', 'hello from compose');
      const [message] = await client.receive('compose-check', { max: 1, waitMs: 5_000 });
      expect(message?.seq).toBe(seq);
      expect(message?.body).toBe('hello from compose');
      await message!.ack();
    } finally {
      await client.close();
    }
    for (const node of nodes) {
      await waitFor(
        async () => {
          const q = await getJson<{ depth: number; ackedCount: number }>(node, '/api/queues/compose-check');
          return q.ackedCount === 1 && q.depth === 0;
        },
        { timeoutMs: 10_000, what: `${node.name} to apply the ack` },
      );
    }
  });
});
