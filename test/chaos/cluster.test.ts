/**
 * Proves the chaos harness is wired the way the nemesis assumes, on a real 3-node cluster (run
 * `npx tsc -b` first): every peer link goes through its own proxy, cutting i→j takes down only
 * node i's link to j (j still reaches i), pausing a node keeps the rest serving, and stopping the
 * harness leaves no process and no proxy behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { ChaosCluster } from './cluster.js';

let chaos: ChaosCluster;
let root: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'chaos-cluster-'));
  chaos = await ChaosCluster.start({ size: 3, root });
  await chaos.waitForLeader(30_000);
}, 60_000);

afterAll(async () => {
  await chaos?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** Does node `from` see its link to `to` up? */
async function linkUp(from: string, to: string): Promise<boolean> {
  const view = await chaos.view(from);
  return view.members.find((m) => m.id === to)?.connected === true;
}

describe('ChaosCluster', () => {
  it('routes every peer link through the proxy of that direction', async () => {
    for (const from of chaos.members()) {
      for (const to of chaos.members()) {
        if (from === to) continue;
        await waitFor(() => linkUp(from, to), { timeoutMs: 15_000, what: `${from}->${to} up` });
        expect(chaos.link(from, to).stats().forwardedBytes).toBeGreaterThan(0);
      }
    }
  });

  it('cuts one direction of one link and heals it', async () => {
    chaos.breakLink('n1', 'n2', { mode: 'cut' });
    await waitFor(async () => !(await linkUp('n1', 'n2')), { timeoutMs: 15_000, what: 'n1 to see n2 down' });
    // The reverse link is n2's own connection to n1, through another proxy: untouched.
    expect(chaos.link('n2', 'n1').currentMode).toBe('pass');
    expect(await linkUp('n2', 'n1')).toBe(true);
    chaos.healNetwork();
    await waitFor(() => linkUp('n1', 'n2'), { timeoutMs: 15_000, what: 'n1 to see n2 again' });
  });

  it('keeps serving with a paused follower, and takes it back', async () => {
    const leader = await chaos.waitForLeader();
    const follower = chaos.members().find((id) => id !== leader)!;
    chaos.pause(follower);
    expect(chaos.isUp(follower)).toBe(false);
    expect(await chaos.waitForLeader()).toBe(leader);
    chaos.resume(follower);
    await waitFor(async () => (await chaos.view(follower)).leaderId === leader, {
      timeoutMs: 15_000,
      what: `${follower} to follow ${leader} again`,
    });
  });

  it('records a node that dies by itself as a crash, and one it kills as none', async () => {
    const [victim] = chaos.members();
    await chaos.kill(victim!);
    expect(chaos.crashes()).toEqual([]);
    await chaos.restart(victim!);
    chaos.node(victim!).process!.kill('SIGKILL');
    await waitFor(() => chaos.crashes().length === 1, { what: 'the crash to be recorded' });
    expect(chaos.crashes()[0]!.id).toBe(victim);
    await chaos.healAll();
    expect(chaos.isUp(victim!)).toBe(true);
  });

  it('leaves no process and no proxy behind when stopped', async () => {
    const children = chaos.cluster.nodes.map((n) => n.process!);
    const proxyPort = chaos.link('n1', 'n3').port;
    await chaos.stop();
    expect(children.every((child) => child.exitCode !== null || child.signalCode !== null)).toBe(true);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(proxyPort, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
