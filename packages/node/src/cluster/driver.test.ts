/**
 * The Raft driver on a real in-process cluster (loopback WebSockets, FileStorage in temp dirs):
 * a leader is elected from the bootstrap snapshot (identical on every initial member); proposals
 * commit and apply on every node in the same order; status reports members with addresses,
 * voter flags, match indexes and links; reads are linearizable on the leader and refused
 * elsewhere; leadership can be transferred; a restarted follower catches up from its directory.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlotillaError } from '@flotilla/shared';
import { afterEach, describe, expect, it } from 'vitest';
import type { RaftStorage, WriteBatch } from '../storage/index.js';
import { TestCluster } from './testing/harness.js';
import { waitFor } from './testing/support.js';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

const sameOrder = (c: TestCluster) => {
  const lists = c.alive().map((n) => n.app.items.map((i) => `${i.index}:${i.text}`).join(','));
  return lists.every((list) => list === lists[0]);
};

describe('raft driver', () => {
  it('elects a leader, commits proposals and applies them on every node in the same order', async () => {
    cluster = await TestCluster.start({ size: 3 });
    const leader = await cluster.waitForLeader();
    const texts = await cluster.proposeMany(50);
    const last = await cluster.propose('last');
    await cluster.waitForApplied(last.index);
    // Same entries in the same order everywhere (a leader change under load may reorder retried proposals).
    expect(sameOrder(cluster)).toBe(true);
    for (const node of cluster.alive())
      expect([...node.app.texts()].sort()).toEqual([...texts, 'last'].sort());
    const status = leader.driver.status();
    expect(status).toMatchObject({ role: 'leader', leaderId: leader.id, leaderAddress: leader.address });
    expect(status.members.map((m) => [m.id, m.voter, m.address])).toEqual(
      ['n1', 'n2', 'n3'].map((id) => [id, true, cluster!.peers.get(id)]),
    );
    await waitFor(
      () => leader.driver.status().members.every((m) => m.connected && m.matchIndex! >= last.index),
      'match indexes',
    );
    const follower = cluster.alive().find((n) => n !== leader)!;
    expect(follower.driver.status()).toMatchObject({
      role: 'follower',
      leaderId: leader.id,
      leaderAddress: leader.address,
    });
    expect(follower.driver.status().members.every((m) => m.matchIndex === null)).toBe(true);
  });

  it('runs a single-node cluster, and reports to its observer', async () => {
    const events: string[] = [];
    cluster = await TestCluster.start({
      size: 1,
      observer: () => ({
        sync: (report) => events.push(report.entries > 0 ? 'sync' : 'sync-empty'),
        committed: (ms) => events.push(ms >= 0 ? 'committed' : 'negative latency'),
        leaderChanged: (leaderId, term) => events.push(`leader ${leaderId} t${term}`),
      }),
    });
    const leader = await cluster.waitForLeader();
    expect(leader.id).toBe('n1');
    const at = await cluster.propose('alone');
    await leader.driver.readBarrier();
    expect(leader.app.items).toEqual([{ index: at.index, text: 'alone' }]);
    expect(events).toContain('leader n1 t2');
    expect(events).toContain('sync');
    expect(events).toContain('committed');
    await cluster.stop('n1');
    await cluster.restart('n1');
    await cluster.waitForLeader();
    expect(cluster.node('n1').app.texts()).toEqual(['alone']);
  });

  it('starts every initial member from the same bootstrap snapshot', async () => {
    cluster = await TestCluster.start({ size: 3 });
    const bodies = cluster.alive().map((node) => {
      const files = readdirSync(node.dir).filter((f) => f.endsWith('.snap'));
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/^snap-0*1-0*1\.snap$/); // index 1, term 1
      return readFileSync(join(node.dir, files[0]!)).toString('base64');
    });
    expect(new Set(bodies).size).toBe(1);
    const leader = await cluster.waitForLeader();
    expect(leader.driver.status().term).toBeGreaterThanOrEqual(2);
  });

  it('sends a proposal at once on sendProposals, not on the next event-loop turn', async () => {
    cluster = await TestCluster.start({ size: 3 });
    const leader = await cluster.waitForLeader();
    await cluster.waitForApplied((await cluster.propose('first')).index);
    const sent: number[][] = [];
    const send = leader.transport.send.bind(leader.transport);
    leader.transport.send = (messages) => {
      sent.push(messages.flatMap((m) => (m.type === 'append' ? m.entries.map((e) => e.index) : [])));
      send(messages);
    };
    // As the broker does: propose from a setImmediate callback, then ask for the sends.
    const { index, sentAtOnce, sentWithoutAsking } = await new Promise<{
      index: number;
      sentAtOnce: boolean;
      sentWithoutAsking: boolean;
    }>((resolve) => {
      setImmediate(() => {
        const outcome = leader.driver.tryPropose(new TextEncoder().encode('now'));
        if (!outcome.ok) throw new Error(`refused: ${outcome.reason}`);
        const sentWithoutAsking = sent.flat().includes(outcome.index);
        leader.driver.sendProposals();
        resolve({ index: outcome.index, sentAtOnce: sent.flat().includes(outcome.index), sentWithoutAsking });
      });
    });
    expect(sentWithoutAsking).toBe(false);
    expect(sentAtOnce).toBe(true);
    await cluster.waitForApplied(index);
    expect(leader.app.texts()).toEqual(['first', 'now']);
    // Nothing scheduled: a no-op.
    leader.driver.sendProposals();
  });

  it('tells storage when a write holds the only entries in flight, and when more is in flight', async () => {
    const writes: { node: string; texts: string[]; sole: boolean }[] = [];
    const decoder = new TextDecoder();
    const recording = (storage: RaftStorage, node: string): RaftStorage =>
      new Proxy(storage, {
        get(target, prop) {
          if (prop === 'write')
            return (batch: WriteBatch, done: (err: Error | null) => void) => {
              const texts = (batch.entries ?? []).map((e) => decoder.decode(e.data));
              if (texts.length > 0) writes.push({ node, texts, sole: batch.soleInFlight === true });
              target.write(batch, done);
            };
          const value = Reflect.get(target, prop);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    // A generous election timeout: a leader change mid-test would move the writes to another node.
    cluster = await TestCluster.start({ size: 3, wrapStorage: recording, electionTimeoutMs: 2_000 });
    const leader = await cluster.waitForLeader();
    // Every follower caught up first (right after an election one may get several entries at once).
    await cluster.waitForApplied((await cluster.propose('warm-up')).index);
    // One at a time, as a publisher awaiting each confirm: every node's write holds all that is
    // uncommitted (a follower learns the commit of 'one' with the append that carries 'two').
    await cluster.propose('one');
    const two = await cluster.propose('two');
    // 'four' is proposed while 'three' is written but not committed (that takes a follower's reply).
    const three = cluster.propose('three');
    await new Promise((resolve) => setImmediate(resolve));
    const four = cluster.propose('four');
    await Promise.all([three, four]);
    await cluster.waitForApplied(two.index + 2);
    expect(cluster.leader()).toBe(leader);
    for (const node of cluster.alive())
      expect(writes.filter((w) => w.node === node.id)).toContainEqual({
        node: node.id,
        texts: ['two'],
        sole: true,
      });
    const leaderWrites = writes.filter((w) => w.node === leader.id);
    expect(leaderWrites).toContainEqual({ node: leader.id, texts: ['three'], sole: true });
    expect(leaderWrites).toContainEqual({ node: leader.id, texts: ['four'], sole: false });
  });

  it('serves linearizable reads on the leader and refuses them on followers', async () => {
    cluster = await TestCluster.start({ size: 3 });
    const leader = await cluster.waitForLeader();
    const at = await cluster.propose('before-read');
    await leader.driver.readBarrier();
    expect(leader.driver.status().appliedIndex).toBeGreaterThanOrEqual(at.index);
    const follower = cluster.alive().find((n) => n !== leader)!;
    const refusal = await follower.driver.readBarrier().catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(FlotillaError);
    expect(refusal).toMatchObject({ code: 'NOT_LEADER', details: { leaderId: leader.id } });
  });

  it('transfers leadership to a chosen voter and to the most caught-up one', async () => {
    cluster = await TestCluster.start({ size: 3 });
    const first = await cluster.waitForLeader();
    await cluster.propose('x');
    const target = cluster.alive().find((n) => n !== first)!;
    await first.driver.transferLeadership(target.id);
    await waitFor(() => target.driver.status().role === 'leader', 'target leads');
    await target.driver.transferLeadership();
    await waitFor(
      () => cluster!.leader() !== undefined && cluster!.leader() !== target,
      'leadership moved on',
    );
    await cluster.propose('after transfers');
  });

  it('catches up a follower restarted from its directory, after a graceful stop and after a kill', async () => {
    cluster = await TestCluster.start({ size: 3 });
    const leader = await cluster.waitForLeader();
    const [a, b] = cluster.alive().filter((n) => n !== leader);
    await cluster.proposeMany(20, 'before-');
    await cluster.stop(a!.id);
    await cluster.proposeMany(20, 'while-a-down-');
    await cluster.restart(a!.id);
    await cluster.kill(b!.id);
    const last = await cluster.propose('while-b-down');
    await cluster.restart(b!.id);
    await cluster.waitForApplied(last.index);
    expect(sameOrder(cluster)).toBe(true);
    expect(cluster.node(a!.id).app.texts()).toContain('while-a-down-40');
  });
});
