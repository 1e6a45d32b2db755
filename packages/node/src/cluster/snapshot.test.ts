/**
 * Snapshots through the driver: nodes snapshot after `snapshotLogBytes` of log and compact; a
 * follower that was down while the leader compacted past its log catches up by InstallSnapshot
 * (restoring the state machine from the transferred snapshot) and then by entries; and a whole
 * cluster restarted from disk rebuilds the same state from its snapshots and logs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster } from './testing/harness.js';
import { waitFor } from './testing/support.js';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

const options = {
  size: 3,
  snapshotLogBytes: 4 * 1024,
  // Small chunks so a transfer takes several round trips; few entries kept behind a snapshot.
  raftLimits: { compactionKeepEntries: 5, snapshotChunkBytes: 1024, snapshotChunksInflight: 2 },
};

describe('snapshots', () => {
  it('brings a far-behind follower back by InstallSnapshot after compaction', async () => {
    cluster = await TestCluster.start(options);
    const leader = await cluster.waitForLeader();
    const behind = cluster.alive().find((n) => n !== leader)!;
    await cluster.proposeMany(10, 'early-');
    await cluster.kill(behind.id);
    const behindIndex = behind.driver.status().appliedIndex;
    const pad = 'x'.repeat(200);
    const texts: string[] = [];
    for (let round = 0; round < 6; round++) texts.push(...(await cluster.proposeMany(20, `${pad}-`)));
    await waitFor(
      () => leader.snapshots.filter((e) => e.kind === 'taken').length > 1,
      'snapshots on the leader',
    );
    expect(leader.driver.raftStatus()!.firstIndex).toBeGreaterThan(behindIndex + 1);
    const back = await cluster.restart(behind.id);
    const last = await cluster.propose('after-catch-up');
    await cluster.waitForApplied(last.index);
    expect(back.log.find('receiving a snapshot').length).toBeGreaterThan(0);
    expect(back.app.restores.at(-1)).toBeGreaterThan(behindIndex);
    expect(back.app.texts()).toEqual(leader.app.texts());
    expect(back.app.texts().slice(-2)).toEqual([texts.at(-1), 'after-catch-up']);
  });

  it('rebuilds the same state on every node after the whole cluster restarts', async () => {
    cluster = await TestCluster.start(options);
    await cluster.waitForLeader();
    for (let round = 0; round < 4; round++) await cluster.proposeMany(20, `${'y'.repeat(100)}-`);
    const last = await cluster.propose('last-before-restart');
    await cluster.waitForApplied(last.index);
    for (const node of cluster.alive()) {
      await waitFor(() => node.snapshots.some((e) => e.kind === 'taken'), `a snapshot on ${node.id}`);
    }
    const before = cluster.alive().map((n) => n.app.texts());
    const ids = cluster.alive().map((n) => n.id);
    for (const id of ids) await cluster.stop(id, { transfer: false });
    for (const id of ids) await cluster.restart(id);
    for (const id of ids) {
      const node = cluster.node(id);
      await waitFor(() => node.app.texts().length === before[0]!.length, `${id} replays its log`);
      expect(node.app.restores[0]).toBeGreaterThan(1); // started from its own snapshot, not the bootstrap one
    }
    expect(ids.map((id) => cluster!.node(id).app.texts())).toEqual(before);
    await cluster.waitForLeader();
    await cluster.propose('after-restart');
  });
});
