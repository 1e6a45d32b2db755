/**
 * Proves, on the real Raft driver (an in-process cluster), the refusal reasons the runtime maps to
 * client errors: `too-large` past the core's maxEntryBytes (which the driver reports), `overloaded`
 * past maxUncommittedBytes, `transferring` naming the target of a hand-over, and `not-leader` on a
 * follower naming the leader and its address.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster } from '../cluster/testing/harness.js';
import { waitFor } from '../cluster/testing/support.js';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe('refusals of the Raft driver', () => {
  it('says too-large past its entry limit and overloaded past its uncommitted bytes', async () => {
    cluster = await TestCluster.start({
      size: 1,
      raftLimits: { maxEntryBytes: 1_000, maxUncommittedBytes: 1_500 },
    });
    const leader = await cluster.waitForLeader();
    expect(leader.driver.maxEntryBytes).toBe(1_000);
    expect(leader.driver.tryPropose(new Uint8Array(1_001))).toMatchObject({ ok: false, reason: 'too-large' });
    // Within one turn nothing commits: the second entry passes the uncommitted limit.
    expect(leader.driver.tryPropose(new Uint8Array(1_000))).toMatchObject({ ok: true });
    expect(leader.driver.tryPropose(new Uint8Array(1_000))).toEqual({
      ok: false,
      reason: 'overloaded',
      leaderId: null,
      leaderAddress: null,
    });
    expect(leader.driver.propose(new Uint8Array(1_000))).toBeNull();
  });

  it('names the transfer target while handing over, and the leader on a follower', async () => {
    cluster = await TestCluster.start({ size: 3 });
    const leader = await cluster.waitForLeader();
    const follower = cluster.alive().find((node) => node !== leader)!;
    await waitFor(() => follower.driver.status().leaderId === leader.id, 'the follower to know the leader');
    expect(follower.driver.tryPropose(new Uint8Array(1))).toEqual({
      ok: false,
      reason: 'not-leader',
      leaderId: leader.id,
      leaderAddress: leader.address,
    });
    const transfer = leader.driver.transferLeadership(follower.id);
    expect(leader.driver.tryPropose(new Uint8Array(1))).toEqual({
      ok: false,
      reason: 'transferring',
      leaderId: follower.id,
      leaderAddress: follower.address,
    });
    await transfer;
  });
});
