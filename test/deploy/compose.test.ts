/**
 * Proves deploy/docker-compose.yml describes one consistent 3-node cluster: service names are the
 * node ids and the hosts peers dial, every node lists the same peers at the addresses they
 * advertise, the secret comes from one variable, each node has its own volume at its data
 * directory, healthchecks probe the node's own port, host ports are distinct, and each node's
 * environment passes the server's own configuration check. None of this needs Docker: the file is
 * read with `yaml` and interpolated as Compose does. Compose's own verdict on the file is
 * `npm run check:deploy` (test/deploy/check-with-tools.sh), which says plainly when Docker is absent.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { loadServerConfig } from '../../packages/node/src/config/config.js';
import {
  interpolate,
  loadCompose,
  parsePeerList,
  publishedPorts,
  rawEnvironment,
  serviceEnvironment,
  splitHostPort,
  volumeMounts,
} from './compose.js';

const compose = loadCompose();
const names = Object.keys(compose.services);
const envOf = (name: string) => serviceEnvironment(compose.services[name]!);

describe('docker-compose.yml', () => {
  it('has three nodes whose service names are their node ids', () => {
    expect(names).toEqual(['n1', 'n2', 'n3']);
    for (const name of names) expect(envOf(name).FLOTILLA_NODE_ID).toBe(name);
  });

  it('advertises each node at its service name and listening port, on every interface', () => {
    for (const name of names) {
      const env = envOf(name);
      const listen = splitHostPort(env.FLOTILLA_LISTEN!);
      expect(listen.host).toBe('0.0.0.0');
      expect(env.FLOTILLA_ADVERTISE).toBe(`${name}:${listen.port}`);
    }
  });

  it('gives every node the same peer list, naming each node at its advertised address', () => {
    const lists = names.map((name) => envOf(name).FLOTILLA_PEERS);
    expect(new Set(lists).size).toBe(1);
    const peers = parsePeerList(lists[0]!);
    expect([...peers.keys()].sort()).toEqual(names);
    for (const name of names) expect(peers.get(name)).toBe(envOf(name).FLOTILLA_ADVERTISE);
  });

  it('takes the cluster secret from one variable, with a usable default', () => {
    const raw = new Set(names.map((name) => rawEnvironment(compose.services[name]!).FLOTILLA_CLUSTER_SECRET));
    expect(raw.size).toBe(1);
    expect([...raw][0]).toMatch(/^\$\{FLOTILLA_CLUSTER_SECRET(:-[^}]+)?\}$/);
    expect(envOf('n1').FLOTILLA_CLUSTER_SECRET!.length).toBeGreaterThanOrEqual(8);
    const custom = serviceEnvironment(compose.services.n2!, {
      FLOTILLA_CLUSTER_SECRET: 'from-the-shell-123',
    });
    expect(custom.FLOTILLA_CLUSTER_SECRET).toBe('from-the-shell-123');
  });

  it('mounts one named volume per node at its data directory', () => {
    const sources = names.map((name) => {
      const mounts = volumeMounts(compose.services[name]!);
      expect(mounts).toHaveLength(1);
      expect(mounts[0]!.target).toBe(envOf(name).FLOTILLA_DATA_DIR);
      return mounts[0]!.source;
    });
    expect(new Set(sources).size).toBe(names.length);
    expect(Object.keys(compose.volumes ?? {}).sort()).toEqual([...sources].sort());
  });

  it('publishes each node on its own host port, mapped to the listening port', () => {
    const hostPorts = names.map((name) => {
      const ports = publishedPorts(compose.services[name]!);
      expect(ports).toHaveLength(1);
      expect(ports[0]!.containerPort).toBe(splitHostPort(envOf(name).FLOTILLA_LISTEN!).port);
      return ports[0]!.hostPort;
    });
    expect(new Set(hostPorts).size).toBe(names.length);
  });

  it('restarts nodes unless stopped and health-checks /health on their own port', () => {
    for (const name of names) {
      const service = compose.services[name]!;
      expect(service.restart).toBe('unless-stopped');
      const test = service.healthcheck?.test;
      expect(Array.isArray(test) && test[0]).toBe('CMD');
      const command = (test as string[]).join(' ');
      const port = splitHostPort(envOf(name).FLOTILLA_LISTEN!).port;
      expect(command).toContain(`http://127.0.0.1:${port}/health`);
      expect(command).not.toMatch(/curl|wget/);
    }
  });

  it('has a healthcheck command that passes only while /health answers 200', async () => {
    const [, executable, ...args] = compose.services.n1!.healthcheck!.test as string[];
    expect(executable).toBe('node');
    let healthy = true;
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/health' && healthy ? 200 : 503).end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    // The container's port is fixed; point the same script at the stand-in's port.
    const local = args.map((a) => a.replace('127.0.0.1:7401', `127.0.0.1:${port}`));
    const run = () =>
      new Promise<number | null>((resolve) => {
        spawn(process.execPath, local, { stdio: 'ignore' }).once('exit', (code) => resolve(code));
      });
    try {
      expect(await run()).toBe(0);
      healthy = false;
      expect(await run()).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('builds the image from deploy/Dockerfile at the repository root', () => {
    for (const name of names) {
      expect(compose.services[name]!.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
    }
  });

  it('gives each node an environment the server accepts, forming one cluster', () => {
    const configs = names.map((name) => loadServerConfig({}, envOf(name), '/'));
    for (const [i, config] of configs.entries()) {
      expect(config.nodeId).toBe(names[i]);
      expect([...config.peers.keys()].sort()).toEqual(names);
      expect(config.peers.get(config.nodeId)).toEqual(config.advertise);
      expect(config.join).toBe(false);
    }
    expect(new Set(configs.map((c) => c.clusterSecret)).size).toBe(1);
  });

  it('interpolates like Compose does', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose variables, not a template
    expect(interpolate('${A:-x}|${B-y}|${C}|$$D', { A: '', B: '' })).toBe('x|||$D');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose variables, not a template
    expect(() => interpolate('${S:?set S}', {})).toThrow(/S is required/);
  });
});
