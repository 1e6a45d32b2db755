/**
 * RaftNode unit tests: leadership transfer, ReadIndex, CheckQuorum, fast backtracking, flow
 * control (in-flight window, batching, probing), pipelined persistence, proposal refusals,
 * membership changes and restart. Each test drives a small cluster by hand (test-support.ts).
 */
import { describe, expect, it } from 'vitest';
import { Refusal } from './errors.js';
import type { Message } from './messages.js';
import { RaftNode } from './node.js';
import { bytes, TestCluster } from './test-support.js';
import { ConfChangeType } from './types.js';

const appendsTo = (c: TestCluster, id: string) =>
  c.network.filter((m): m is Extract<Message, { type: 'append' }> => m.type === 'append' && m.to === id);

/** Ticks every node and delivers everything, `rounds` times. */
function runFor(c: TestCluster, rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    c.tickAll(1);
    c.stabilize();
  }
}

describe('leadership transfer (thesis §3.10)', () => {
  it('hands over at once to a caught-up voter, refusing proposals meanwhile', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'before');
    c.stabilize();
    expect(c.raft('n1').transferLeadership('n2')).toEqual({ ok: true });
    expect(c.raft('n1').propose(bytes('during'))).toEqual({
      ok: false,
      reason: Refusal.Transferring,
      leader: 'n1',
    });
    c.takeTranscript();
    c.stabilize();
    expect(c.takeTranscript().slice(0, 3)).toEqual([
      'n1->n2 timeoutNow t1',
      'n2->n1 vote t2 last=2/1 transfer',
      'n2->n3 vote t2 last=2/1 transfer',
    ]);
    expect(c.leaders()).toEqual(['n2']);
    expect(c.raft('n1').status()).toMatchObject({ role: 'follower', leader: 'n2', term: 2 });
  });

  it('first brings a lagging transferee up to date', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'a');
    c.propose('n1', 'b');
    c.stabilize();
    c.heal();
    c.raft('n1').transferLeadership('n3');
    c.takeTranscript();
    c.stabilize();
    expect(c.takeTranscript().slice(0, 6)).toEqual([
      'n1->n3 append t1 prev=3/1 [] c3',
      'n3->n1 appendResp t1 reject 3 hint=1/1',
      'n1->n3 append t1 prev=1/1 [2/1 3/1] c3',
      'n3->n1 appendResp t1 ok 3',
      'n1->n3 timeoutNow t1',
      'n3->n1 vote t2 last=3/1 transfer',
    ]);
    expect(c.leaders()).toEqual(['n3']);
    expect(c.appliedData('n3')).toEqual(['a', 'b']);
  });

  it('is aborted after an election timeout when the transferee never catches up', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n2');
    c.propose('n1', 'x');
    c.stabilize();
    c.raft('n1').transferLeadership('n2');
    for (let i = 0; i < 9; i++) {
      c.tick('n1');
      c.stabilize();
    }
    expect(c.raft('n1').status().transferee).toBe('n2');
    c.tick('n1');
    expect(c.raft('n1').status()).toMatchObject({ role: 'leader', transferee: null });
    expect(c.raft('n1').propose(bytes('again')).ok).toBe(true);
  });

  it('is refused on a follower and towards a non-voter', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    expect(c.raft('n2').transferLeadership('n3')).toEqual({
      ok: false,
      reason: Refusal.NotLeader,
      leader: 'n1',
    });
    expect(c.raft('n1').transferLeadership('n9')).toMatchObject({ ok: false, reason: Refusal.NotAVoter });
  });
});

describe('ReadIndex (§6.4)', () => {
  it('answers only after a heartbeat round confirms leadership', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'x');
    c.stabilize();
    c.takeTranscript();
    expect(c.raft('n1').readIndex(7)).toEqual({ ok: true });
    c.processReadys();
    expect(c.node('n1').readStates).toEqual([]);
    c.deliver((m) => m.to === 'n2');
    c.deliver((m) => m.to === 'n1');
    expect(c.takeTranscript()).toEqual(['n1->n2 heartbeat t1 c2 read1', 'n2->n1 heartbeatResp t1 read1']);
    expect(c.node('n1').readStates).toEqual([{ index: 2, ctx: 7 }]);
  });

  it('waits until an entry of the leader’s term is committed', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'x');
    c.stabilize();
    c.isolate('n1');
    c.tick('n2', 10);
    c.tick('n3', 10);
    c.campaignUntilLeader('n2'); // n2 leads term 2; its no-op (3/2) is not yet committed
    c.raft('n2').readIndex(1);
    c.settle((m) => m.type === 'heartbeat' || m.type === 'heartbeatResp');
    expect(c.node('n2').readStates).toEqual([]);
    c.stabilize();
    expect(c.node('n2').readStates).toEqual([{ index: 3, ctx: 1 }]);
  });

  it('a leader cut off from the quorum never confirms a read', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    c.raft('n1').readIndex(1);
    runFor(c, 25);
    expect(c.node('n1').readStates).toEqual([]);
    expect(c.raft('n1').status().role).toBe('follower');
  });

  it('a single voter answers at once; followers refuse', () => {
    const solo = new TestCluster(['n1']);
    solo.elect('n1');
    solo.raft('n1').readIndex(5);
    solo.processReadys();
    expect(solo.node('n1').readStates).toEqual([{ index: 1, ctx: 5 }]);
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    expect(c.raft('n2').readIndex(1)).toEqual({ ok: false, reason: Refusal.NotLeader, leader: 'n1' });
  });

  it('refuses reads beyond maxPendingReads', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { limits: { maxPendingReads: 2 } });
    c.elect('n1');
    expect(c.raft('n1').readIndex(1).ok).toBe(true);
    expect(c.raft('n1').readIndex(2).ok).toBe(true);
    expect(c.raft('n1').readIndex(3)).toMatchObject({ ok: false, reason: Refusal.Overloaded });
  });
});

describe('CheckQuorum (thesis §6.2)', () => {
  it('a leader cut off from a quorum steps down within two election timeouts', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    let ticks = 0;
    while (c.raft('n1').status().role === 'leader' && ticks < 100) {
      c.tick('n1');
      c.stabilize();
      ticks++;
    }
    expect(c.raft('n1').status()).toMatchObject({ role: 'follower', leader: null, term: 1 });
    expect(ticks).toBeLessThanOrEqual(20);
  });

  it('a leader that hears from a quorum stays, even with one follower gone', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.crash('n3');
    runFor(c, 50);
    expect(c.raft('n1').status()).toMatchObject({ role: 'leader', term: 1 });
  });

  it('a follower in its leader’s lease ignores vote requests', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { preVote: false });
    c.elect('n1');
    c.raft('n3').campaign();
    c.processReadys();
    c.takeTranscript();
    c.deliver((m) => m.to === 'n2');
    expect(c.takeTranscript()).toEqual(['n3->n2 vote t2 last=1/1']);
    expect(c.network.filter((m) => m.from === 'n2')).toEqual([]);
    expect(c.raft('n2').status()).toMatchObject({ term: 1, leader: 'n1' });
  });
});

describe('forgetLeader (fast failover when the leader’s link is gone)', () => {
  it('elects a new leader well within one election timeout once the survivors forget a dead leader', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { seed: 1 });
    c.elect('n1');
    c.propose('n1', 'committed');
    c.stabilize();
    c.crash('n1');
    c.raft('n2').forgetLeader();
    c.raft('n3').forgetLeader();
    c.processReadys();
    expect(c.raft('n2').status()).toMatchObject({ role: 'follower', leader: null, term: 1 });
    let ticks = 0;
    while (c.leaders().length === 0 && ticks < 100) {
      c.tickAll(1);
      c.stabilize();
      ticks++;
    }
    expect(c.leaders()).toHaveLength(1);
    expect(c.leaders()[0]).not.toBe('n1');
    // Within leaderGoneSpreadTicks (3), where a full randomized timeout is 10 to 20 ticks, and at
    // the first try (term 2): their draws differed, so one campaigned alone.
    expect(ticks).toBeLessThanOrEqual(3);
    expect(c.raft(c.leaders()[0]!).status().term).toBe(2);
    expect(c.appliedData(c.leaders()[0]!)).toEqual(['committed']);
  });

  it('two survivors that campaign in the same tick split once, then a short round separates them', () => {
    // Spread 1: both campaign on their next tick, the worst case the randomness normally avoids.
    const c = new TestCluster(['n1', 'n2', 'n3'], { seed: 11, limits: { leaderGoneSpreadTicks: 1 } });
    c.elect('n1');
    c.propose('n1', 'committed');
    c.stabilize();
    c.crash('n1');
    c.raft('n2').forgetLeader();
    c.raft('n3').forgetLeader();
    c.tickAll(1);
    c.stabilize();
    // Each granted the other's pre-vote, then voted for itself in term 2: nobody won.
    expect(c.leaders()).toEqual([]);
    expect(c.raft('n2').status()).toMatchObject({ role: 'candidate', term: 2 });
    expect(c.raft('n3').status()).toMatchObject({ role: 'candidate', term: 2 });
    let ticks = 0;
    while (c.leaders().length === 0 && ticks < 100) {
      c.tickAll(1);
      c.stabilize();
      ticks++;
    }
    // One more round on a short timeout (T/4 to T/2 = 2 to 4 ticks), not a full one (10 to 20).
    expect(c.leaders()).toHaveLength(1);
    expect(ticks).toBeLessThanOrEqual(4);
    expect(c.raft(c.leaders()[0]!).status().term).toBe(3);
    expect(c.appliedData(c.leaders()[0]!)).toEqual(['committed']);
  });

  it('short election timeouts last two election timeouts at most when elections keep failing', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { seed: 5 });
    c.elect('n1');
    c.isolate('n2'); // n2's campaigns never get an answer
    c.raft('n2').forgetLeader();
    const campaignTicks: number[] = [];
    for (let tick = 1; tick <= 80; tick++) {
      c.tick('n2');
      if (c.network.some((m) => m.from === 'n2' && m.type === 'preVote')) campaignTicks.push(tick);
      c.stabilize();
    }
    const gaps = campaignTicks.slice(1).map((t, i) => t - campaignTicks[i]!);
    // The first campaign within the spread (3 ticks); retries every 2 to 4 ticks while the window
    // (20 ticks) is open; then ordinary timeouts of 10 to 19 ticks.
    expect(campaignTicks[0]).toBeLessThanOrEqual(3);
    const inWindow = gaps.filter((_, i) => campaignTicks[i]! < 20);
    const after = gaps.filter((_, i) => campaignTicks[i]! >= 24);
    expect(inWindow.length).toBeGreaterThanOrEqual(4);
    expect(inWindow.every((gap) => gap >= 2 && gap <= 4)).toBe(true);
    expect(after.length).toBeGreaterThanOrEqual(2);
    expect(after.every((gap) => gap >= 10 && gap < 20)).toBe(true);
  });

  it('hearing from the leader again restores a full election timeout', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { seed: 9 });
    c.elect('n1');
    c.raft('n2').forgetLeader();
    c.tick('n1'); // a heartbeat: n1 was alive all along
    c.stabilize();
    expect(c.raft('n2').status()).toMatchObject({ role: 'follower', leader: 'n1', term: 1 });
    c.isolate('n2');
    c.tick('n2', 9);
    expect(c.network.filter((m) => m.from === 'n2' && m.type === 'preVote')).toEqual([]);
    expect(c.raft('n2').status()).toMatchObject({ role: 'follower', leader: 'n1' });
  });

  it('a follower that forgets a live leader cannot disrupt it: the others keep the lease (PreVote)', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { seed: 3 });
    c.elect('n1');
    c.cutLink('n1', 'n2'); // n2 stops hearing the leader, which n3 still hears
    c.raft('n2').forgetLeader();
    c.processReadys();
    // n2 runs pre-elections (short rounds while its window is open); n1 and n3 keep the lease.
    let preVotes = 0;
    for (let i = 0; i < 12; i++) {
      c.tick('n2');
      preVotes += c.network.filter((m) => m.type === 'preVote' && m.from === 'n2').length;
      c.stabilize();
      c.tick('n1');
      c.stabilize();
    }
    expect(preVotes).toBeGreaterThan(0);
    expect(c.leaders()).toEqual(['n1']);
    expect(c.raft('n1').status().term).toBe(1);
    expect(c.raft('n3').status()).toMatchObject({ role: 'follower', leader: 'n1', term: 1 });
    c.heal();
    c.tick('n1');
    c.stabilize();
    expect(c.raft('n2').status()).toMatchObject({ role: 'follower', leader: 'n1', term: 1 });
  });

  it('does nothing on a leader, a candidate, or a follower that knows no leader', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.raft('n1').forgetLeader();
    expect(c.raft('n1').hasReady()).toBe(false);
    expect(c.raft('n1').status()).toMatchObject({ role: 'leader', leader: 'n1' });
    const fresh = new TestCluster(['a', 'b', 'c']);
    fresh.raft('a').forgetLeader();
    expect(fresh.raft('a').hasReady()).toBe(false);
  });
});

describe('fast backtracking (§5.3)', () => {
  it('skips a whole divergent term per round trip', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.isolate('n1');
    for (let i = 0; i < 30; i++) c.propose('n1', `stale-${i}`); // 2..31 at term 1, never committed
    c.tick('n2', 10);
    c.tick('n3', 10);
    c.campaignUntilLeader('n2');
    for (let i = 0; i < 20; i++) c.propose('n2', `new-${i}`); // 3..22 at term 2
    c.stabilize();
    c.raft('n2').transferLeadership('n3');
    c.stabilize(); // n3 leads term 3 and will probe n1 at 22/2
    c.heal();
    c.takeTranscript();
    runFor(c, 2);
    const rejections = c.takeTranscript().filter((line) => line.startsWith('n1->n3 appendResp'));
    // n1's hint (22/1) lets n3 skip all of its term-2 entries at once; without hints, n3 would
    // walk back one index per round trip (21 rejections).
    expect(rejections).toEqual(['n1->n3 appendResp t3 reject 22 hint=22/1', 'n1->n3 appendResp t3 ok 23']);
    expect(c.logTerms('n1')).toEqual(c.logTerms('n3'));
  });
});

describe('flow control', () => {
  it('pipelines at most maxInflightAppends messages per follower, more as acknowledgements arrive', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { limits: { maxInflightAppends: 2, maxAppendBytes: 1 } });
    c.elect('n1');
    for (let i = 0; i < 6; i++) c.raft('n1').propose(bytes(`${i}`));
    c.processReadys();
    expect(appendsTo(c, 'n2').map((m) => m.entries.map((e) => e.index))).toEqual([[2], [3]]);
    c.deliver((m) => m.to === 'n2');
    c.deliver((m) => m.from === 'n2');
    expect(appendsTo(c, 'n2').map((m) => m.entries.map((e) => e.index))).toEqual([[4], [5]]);
    c.stabilize();
    c.heartbeat('n1');
    expect(c.appliedData('n2')).toEqual(['0', '1', '2', '3', '4', '5']);
  });

  it('batches entries up to maxAppendBytes per message', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { limits: { maxAppendBytes: 10 } });
    c.elect('n1');
    for (let i = 0; i < 6; i++) c.raft('n1').propose(bytes('abcd'));
    c.processReadys();
    expect(appendsTo(c, 'n2').map((m) => m.entries.length)).toEqual([2, 2, 2]);
  });

  it('a follower in probe state gets one message until it answers', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { limits: { maxAppendBytes: 1 } });
    c.raft('n1').campaign();
    c.settle((m) => !m.type.startsWith('append'));
    c.raft('n1').propose(bytes('a'));
    c.raft('n1').propose(bytes('b'));
    c.processReadys();
    expect(appendsTo(c, 'n2')).toHaveLength(1);
    expect(
      c
        .raft('n1')
        .status()
        .peers.find((p) => p.id === 'n2')?.state,
    ).toBe('probe');
  });

  it('refuses proposals beyond maxUncommittedBytes and too-large entries', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { limits: { maxUncommittedBytes: 10, maxEntryBytes: 8 } });
    c.elect('n1');
    c.isolate('n1');
    expect(c.raft('n1').propose(bytes('123456789'))).toMatchObject({ ok: false, reason: Refusal.TooLarge });
    expect(c.raft('n1').propose(bytes('12345678')).ok).toBe(true);
    expect(c.raft('n1').propose(bytes('123'))).toMatchObject({ ok: false, reason: Refusal.Overloaded });
    expect(c.raft('n1').propose(bytes('12')).ok).toBe(true);
  });
});

describe('commit index propagation', () => {
  it('sends no message for a commit alone: followers learn it with the next append or heartbeat', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.heartbeat('n1');
    c.propose('n1', 'x');
    c.settle((m) => m.type === 'append' && m.entries.length > 0);
    c.settle((m) => m.type === 'appendResp');
    expect(c.raft('n1').status().commit).toBe(2);
    expect(c.network).toEqual([]); // nothing was sent for the commit
    expect(c.raft('n2').status().commit).toBe(1);
    c.propose('n1', 'y'); // the next append carries it
    c.deliver((m) => m.to === 'n2');
    expect(c.raft('n2').status().commit).toBe(2);
    expect(c.appliedData('n2')).toEqual(['x']);
    c.stabilize();
    expect(c.raft('n3').status().commit).toBe(2); // its append did not carry index 3's commit yet
    c.heartbeat('n1');
    expect(['n1', 'n2', 'n3'].map((id) => c.appliedData(id))).toEqual([
      ['x', 'y'],
      ['x', 'y'],
      ['x', 'y'],
    ]);
  });
});

describe('leaderCommit (how far a follower has to go)', () => {
  it('a lagging follower learns the leader’s commit index before it holds the entries', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { limits: { maxAppendBytes: 1, maxInflightAppends: 1 } });
    c.elect('n1');
    c.isolate('n3');
    for (let i = 0; i < 5; i++) c.propose('n1', `m${i}`);
    c.stabilize();
    const { commit } = c.raft('n1').status();
    expect(c.raft('n1').status().leaderCommit).toBe(commit);
    expect(c.raft('n3').status().leaderCommit).toBeLessThan(commit);
    c.heal();
    c.tick('n1'); // a heartbeat: n3 answers, the leader resumes appending to it, one entry at a time
    c.deliver((m) => m.to === 'n3');
    c.deliver((m) => m.from === 'n3');
    c.deliver((m) => m.to === 'n3' && m.type === 'append');
    const behind = c.raft('n3').status();
    expect(behind.leaderCommit).toBe(commit);
    expect(behind.commit).toBeLessThan(commit);
    c.stabilize();
    c.heartbeat('n1');
    expect(c.raft('n3').status()).toMatchObject({ commit, leaderCommit: commit });
  });
});

describe('pipelined persistence', () => {
  it('the leader sends entries before its own fsync but counts itself only after it', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.crash('n3'); // the leader's own vote is now needed for a majority
    c.node('n1').manualPersist = true;
    c.propose('n1', 'x');
    expect(appendsTo(c, 'n2')).toHaveLength(1); // sent before the leader's write is durable
    c.settle((m) => m.to === 'n2' || m.from === 'n2');
    expect(c.raft('n1').status()).toMatchObject({ commit: 1, persisted: 1, lastIndex: 2 });
    c.persist('n1');
    c.processReadys();
    expect(c.raft('n1').status().commit).toBe(2);
  });

  it('a follower acknowledges only what is durable, and applies nothing beyond it', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.node('n2').manualPersist = true;
    c.propose('n1', 'x');
    c.deliver((m) => m.to === 'n2');
    expect(c.network.filter((m) => m.from === 'n2')).toEqual([]);
    c.settle((m) => m.to === 'n3' || m.from === 'n3');
    c.propose('n1', 'y'); // its append tells n2 that index 2 is committed
    c.deliver((m) => m.to === 'n2');
    c.persist('n2', 2); // n2's earlier Readys; the entry's write is in the first
    expect(c.raft('n2').status().commit).toBe(2);
    expect(c.appliedData('n2')).toEqual([]);
    c.persist('n2');
    c.processReadys();
    c.persist('n2');
    expect(c.appliedData('n2')).toEqual(['x']);
  });

  it('answers appends that become durable together with one acceptance, for the highest index', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.propose('n1', 'a');
    c.propose('n1', 'b');
    const appends = appendsTo(c, 'n2');
    expect(appends).toHaveLength(2);
    const last = c.raft('n1').status().lastIndex;
    const n2 = c.raft('n2');
    for (const m of appends) n2.step(m);
    const answers = n2.ready().messagesAfterPersist;
    expect(answers).toEqual([
      expect.objectContaining({ type: 'appendResp', to: 'n1', reject: false, index: last }),
    ]);
  });

  it('keeps producing Readys while earlier ones are in flight; one report may cover several', () => {
    const c = new TestCluster(['n1']);
    c.elect('n1');
    c.node('n1').manualPersist = true;
    c.propose('n1', 'a');
    c.propose('n1', 'b');
    const readys = c.node('n1').unpersisted;
    expect(readys.map((rd) => rd.entries.map((e) => e.index))).toEqual([[2], [3]]);
    const node = c.node('n1');
    node.raft.persisted(readys[1]!.id); // both writes completed; the storage reports once
    node.unpersisted = [];
    c.processReadys();
    expect(c.raft('n1').status()).toMatchObject({ commit: 3, persisted: 3 });
    c.persist('n1');
    expect(c.appliedData('n1')).toEqual(['a', 'b']);
  });
});

describe('membership (thesis §4.1, one server at a time, in effect once appended)', () => {
  it('a learner receives the log, is promoted once caught up, then votes', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.addNode('n4');
    expect(c.proposeConfChange('n1', { type: ConfChangeType.AddLearner, node: 'n4' }).ok).toBe(true);
    c.stabilize();
    c.propose('n1', 'x');
    c.stabilize();
    c.heartbeat('n1');
    expect(c.appliedData('n4')).toEqual(['x']);
    runFor(c, 30);
    expect(c.raft('n4').status()).toMatchObject({ role: 'follower', term: 1 }); // never campaigned
    expect(c.proposeConfChange('n1', { type: ConfChangeType.PromoteLearner, node: 'n4' }).ok).toBe(true);
    c.stabilize();
    expect(c.raft('n4').status().conf.voters).toEqual(['n1', 'n2', 'n3', 'n4']);
  });

  it('refuses to promote a learner that is far behind', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { limits: { learnerPromotionLagEntriesMax: 3 } });
    c.elect('n1');
    c.addNode('n4');
    c.proposeConfChange('n1', { type: ConfChangeType.AddLearner, node: 'n4' });
    c.crash('n4');
    c.stabilize();
    for (let i = 0; i < 5; i++) c.propose('n1', `${i}`);
    c.stabilize();
    const result = c.proposeConfChange('n1', { type: ConfChangeType.PromoteLearner, node: 'n4' });
    expect(result).toMatchObject({ ok: false, reason: Refusal.LearnerBehind });
  });

  it('allows one change at a time, and none before the leader commits in its term', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.campaignUntilLeader('n1'); // its no-op is not committed yet
    const add = { type: ConfChangeType.AddLearner, node: 'n4' } as const;
    expect(c.proposeConfChange('n1', add)).toMatchObject({ ok: false, reason: Refusal.ChangePending });
    c.stabilize();
    expect(c.proposeConfChange('n1', add).ok).toBe(true);
    const second = { type: ConfChangeType.AddLearner, node: 'n5' } as const;
    expect(c.proposeConfChange('n1', second)).toMatchObject({ ok: false, reason: Refusal.ChangePending });
    expect(c.proposeConfChange('n1', add)).toMatchObject({ ok: false, reason: Refusal.ChangePending });
    c.addNode('n4');
    c.stabilize();
    expect(c.proposeConfChange('n1', add)).toMatchObject({ ok: false, reason: Refusal.InvalidChange });
    expect(c.proposeConfChange('n1', second).ok).toBe(true);
  });

  it('a leader that removes itself keeps leading until the removal commits, then steps down', () => {
    const c = new TestCluster(['n1', 'n2', 'n3']);
    c.elect('n1');
    c.proposeConfChange('n1', { type: ConfChangeType.RemoveNode, node: 'n1' });
    expect(c.raft('n1').status()).toMatchObject({ role: 'leader', conf: { voters: ['n2', 'n3'] } });
    expect(c.raft('n1').propose(bytes('x'))).toMatchObject({ ok: false, reason: Refusal.NotLeader });
    c.stabilize();
    expect(c.raft('n1').status()).toMatchObject({ role: 'follower', leader: null });
    runFor(c, 30);
    const leaders = c.leaders();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe('n1');
    expect(c.raft('n1').status().term).toBe(1); // the removed node never campaigns
  });

  it('a server whose own removal is not yet committed still campaigns (thesis §4.2.2)', () => {
    const c = new TestCluster(['n1', 'n2']);
    c.elect('n1');
    c.cutLink('n1', 'n2');
    c.proposeConfChange('n1', { type: ConfChangeType.RemoveNode, node: 'n1' });
    c.stabilize();
    c.crash('n1');
    c.restart('n1'); // its log ends with its own removal; n2 never got it
    c.heal();
    expect(c.raft('n1').status().conf.voters).toEqual(['n2']);
    // n2 cannot win without n1's vote, which n1 refuses (its log is longer): only n1 can move on,
    // by leading {n2} until its removal commits, then stepping down.
    runFor(c, 60);
    expect(c.leaders()).toEqual(['n2']);
    expect(c.raft('n2').status().conf.voters).toEqual(['n2']);
    expect(c.raft('n1').status().role).toBe('follower');
  });

  it('a membership entry that is truncated away no longer applies', () => {
    const c = new TestCluster(['n1', 'n2', 'n3', 'n4', 'n5']);
    c.elect('n1');
    c.partition(['n1', 'n2'], ['n3', 'n4', 'n5']);
    c.addNode('n6');
    c.proposeConfChange('n1', { type: ConfChangeType.AddLearner, node: 'n6' });
    c.stabilize();
    expect(c.raft('n2').status().conf.learners).toEqual(['n6']); // in effect once appended, uncommitted
    c.crash('n1');
    c.heal();
    c.tick('n3', 10);
    c.tick('n4', 10);
    c.tick('n5', 10);
    c.campaignUntilLeader('n3'); // wins with n4 and n5; it never saw the change
    c.stabilize();
    expect(c.logTerms('n2')).toEqual(['1/1', '2/2']);
    expect(c.raft('n2').status().conf.learners).toEqual([]);
  });
});

describe('elections', () => {
  it('a candidate counts its own vote only once its term and vote are durable', () => {
    const c = new TestCluster(['n1']);
    c.node('n1').manualPersist = true;
    c.raft('n1').campaign();
    c.processReadys();
    expect(c.raft('n1').status()).toMatchObject({ role: 'candidate', term: 1, vote: 'n1' });
    c.persist('n1');
    c.processReadys();
    expect(c.raft('n1').status()).toMatchObject({ role: 'leader', term: 1 });
  });

  it('followers time out at randomized moments and elect a leader on their own', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { seed: 42 });
    runFor(c, 25);
    expect(c.leaders()).toHaveLength(1);
    const terms = ['n1', 'n2', 'n3'].map((id) => c.raft(id).status().term);
    expect(new Set(terms).size).toBe(1);
  });
});

describe('restart', () => {
  it('recovers term, vote, commit and log, and asks the state machine to restore then re-apply', () => {
    const c = new TestCluster(['n1', 'n2', 'n3'], { limits: { compactionKeepEntries: 0 } });
    c.elect('n1');
    c.propose('n1', 'a');
    c.stabilize();
    c.heartbeat('n1');
    c.snapshot('n2');
    c.propose('n1', 'b');
    c.stabilize();
    c.heartbeat('n1');
    c.crash('n2');
    c.restart('n2');
    expect(c.raft('n2').status()).toMatchObject({
      term: 1,
      vote: 'n1',
      commit: 3,
      snapshotIndex: 2,
      lastIndex: 3,
    });
    expect(c.node('n2').restoredFrom).toBe(2);
    expect(c.appliedData('n2')).toEqual(['b']);
  });

  it('adopts the term of its last entry when a crash kept entries but not their hard state', () => {
    const raft = new RaftNode({
      id: 'n1',
      group: 1,
      initialVoters: ['n1', 'n2', 'n3'],
      recovered: {
        hardState: { term: 2, vote: 'n2', commit: 1 },
        snapshot: null,
        entries: [
          { index: 1, term: 1, type: 0, data: new Uint8Array() },
          { index: 2, term: 3, type: 0, data: new Uint8Array() },
        ],
      },
      randomInt: () => 0,
    });
    expect(raft.status()).toMatchObject({ term: 3, vote: null, commit: 1 });
    expect(raft.ready().hardState).toEqual({ term: 3, vote: null, commit: 1 });
  });

  it('ignores entries left after a snapshot that are older than it', () => {
    const meta = { index: 5, term: 3, conf: { voters: ['n1'], learners: [] } };
    const raft = new RaftNode({
      id: 'n1',
      group: 1,
      initialVoters: ['n1'],
      recovered: {
        hardState: { term: 3, vote: 'n1', commit: 5 },
        snapshot: meta,
        entries: [{ index: 6, term: 2, type: 0, data: new Uint8Array() }],
      },
      randomInt: () => 0,
    });
    expect(raft.status()).toMatchObject({ lastIndex: 5, lastTerm: 3, commit: 5 });
    expect(raft.ready().restoreSnapshot).toEqual(meta);
  });
});
