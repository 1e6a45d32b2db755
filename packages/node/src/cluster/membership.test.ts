/**
 * Membership changes through the driver, under load. A node started with `--join` (empty storage,
 * no voters) is added as a learner with its address, learns the bootstrap membership and every
 * address by InstallSnapshot, is promoted to voter, and a founding member is removed; proposals keep
 * committing throughout and every member ends with the same state. Addresses survive restarts
 * (from membership entries and snapshot preambles). Bad requests get typed errors and change
 * nothing.
 */
import { FlotillaError } from '@flotilla/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestCluster as Cluster, TestCluster } from './testing/harness.js';
import { waitFor } from './testing/support.js';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

/** Proposes entries back to back until stopped; returns the texts committed. */
function load(c: Cluster): { stop: () => Promise<string[]> } {
  let running = true;
  const committed: string[] = [];
  const loop = (async () => {
    for (let i = 0; running; i++) {
      await c.propose(`load-${i}`, 20_000);
      committed.push(`load-${i}`);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return committed;
    },
  };
}

describe('membership', () => {
  it('adds a joining node as a learner, promotes it, and removes a founder, under load', async () => {
    cluster = await TestCluster.start({
      size: 3,
      snapshotLogBytes: 8 * 1024,
      raftLimits: { compactionKeepEntries: 10 },
    });
    const leader = await cluster.waitForLeader();
    const traffic = load(cluster);
    await cluster.proposeMany(40, `${'z'.repeat(300)}-`); // a snapshot and compaction before n4 arrives
    await cluster.listen('n4');
    const joiner = await cluster.startNode('n4', { join: true, peers: new Map() });
    expect(joiner.driver.status()).toMatchObject({ role: 'follower', members: [] });

    await leader.driver.addLearner('n4', joiner.address);
    await waitFor(() => joiner.driver.status().role === 'learner', 'n4 knows it is a learner');
    const seen = joiner.driver.status().members.map((m) => [m.id, m.voter, m.address]);
    expect(seen).toEqual([
      ...['n1', 'n2', 'n3'].map((id) => [id, true, cluster!.peers.get(id)]),
      ['n4', false, joiner.address],
    ]);
    expect(joiner.log.find('receiving a snapshot').length).toBeGreaterThan(0);

    await leader.driver.promoteLearner('n4');
    await waitFor(
      () => joiner.driver.status().members.find((m) => m.id === 'n4')?.voter === true,
      'n4 votes',
    );
    const founder = cluster.alive().find((n) => n !== leader && n !== joiner)!;
    await leader.driver.removeMember(founder.id);
    const committed = await traffic.stop();
    expect(committed.length).toBeGreaterThan(0);

    const last = await cluster.propose('after-changes');
    const members = cluster.alive().filter((n) => n !== founder);
    await cluster.waitForApplied(last.index, members);
    for (const node of members) {
      expect(
        node.driver
          .status()
          .members.map((m) => m.id)
          .sort(),
      ).toEqual(['n1', 'n2', 'n3', 'n4'].filter((id) => id !== founder.id));
      expect(node.app.texts()).toEqual(leader.app.texts());
    }
    for (const text of committed) expect(joiner.app.texts()).toContain(text);
  });

  it('keeps every member’s address across restarts, from the log and from snapshots', async () => {
    cluster = await TestCluster.start({
      size: 3,
      snapshotLogBytes: 4 * 1024,
      raftLimits: { compactionKeepEntries: 2 },
    });
    const leader = await cluster.waitForLeader();
    await cluster.listen('n4');
    const joiner = await cluster.startNode('n4', { join: true, peers: new Map() });
    await leader.driver.addLearner('n4', joiner.address);
    // No snapshot was taken yet: the joiner is brought up by the bootstrap snapshot itself.
    await waitFor(() => joiner.app.restores.length > 0, 'n4 restores a snapshot');
    expect(joiner.app.restores[0]).toBe(1);
    // Enough log after the change that every node snapshots past it and compacts it away.
    for (let round = 0; round < 4; round++) await cluster.proposeMany(20, `${'w'.repeat(200)}-`);
    for (const node of cluster.alive()) {
      // Taken locally, or (a learner far behind) installed from the leader: either way past the change.
      await waitFor(
        () => node.snapshots.some((e) => e.index > 3),
        `${node.id} has a snapshot past the change`,
      );
    }
    const follower = cluster.alive().find((n) => n !== leader && n !== joiner)!;
    for (const id of [follower.id, 'n4']) {
      await cluster.stop(id, { transfer: false });
      await cluster.restart(id, id === 'n4' ? { join: true, peers: new Map() } : {});
    }
    for (const id of [follower.id, 'n4']) {
      const node = cluster.node(id);
      // Known from the start: the membership from the snapshot's meta, the addresses from its preamble.
      const addresses = Object.fromEntries(node.driver.status().members.map((m) => [m.id, m.address]));
      expect(addresses).toEqual({ ...Object.fromEntries(cluster.peers), n4: joiner.address });
    }
    const last = await cluster.propose('after-restarts');
    await cluster.waitForApplied(last.index);
  });

  it('refuses bad membership requests with typed errors and changes nothing', async () => {
    cluster = await TestCluster.start({ size: 3 });
    const leader = await cluster.waitForLeader();
    await cluster.propose('the leader’s first entry is committed');
    const follower = cluster.alive().find((n) => n !== leader)!;
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (err: unknown) =>
          err instanceof FlotillaError
            ? `${err.code}:${String(err.details.reason ?? err.details.field)}`
            : String(err),
      );
    expect(await code(leader.driver.addLearner('bad id!', '127.0.0.1:1'))).toBe('INVALID_ARGUMENT:id');
    expect(await code(leader.driver.addLearner('n9', 'no-port'))).toBe('INVALID_ARGUMENT:address');
    expect(await code(follower.driver.addLearner('n9', '127.0.0.1:9'))).toBe('NOT_LEADER:not-leader');
    expect(await code(leader.driver.promoteLearner('n2'))).toBe('INVALID_ARGUMENT:invalid-change');
    expect(await code(leader.driver.removeMember('n9'))).toBe('INVALID_ARGUMENT:invalid-change');
    const first = leader.driver.addLearner('n9', '127.0.0.1:9');
    expect(await code(leader.driver.addLearner('n8', '127.0.0.1:8'))).toMatch(/^UNAVAILABLE:/);
    await first;
    expect(leader.driver.status().members.map((m) => m.id)).toEqual(['n1', 'n2', 'n3', 'n9']);
  });
});
