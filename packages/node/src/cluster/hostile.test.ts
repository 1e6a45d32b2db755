/**
 * Hostile and broken peers against a running cluster. Defends "nothing a peer sends may crash a
 * node" and "a broken node stops instead of limping on":
 * - a node with the wrong cluster secret is refused (and logged on both sides) while the others
 *   keep committing; with the right secret it catches up;
 * - garbage, truncated msgpack, invalid Raft messages and contradictory ones from an authenticated
 *   peer are dropped: the leader keeps its term and keeps committing;
 * - a stalled follower (its process stopped) costs the leader a bounded send queue, and catches up
 *   when it resumes;
 * - a storage I/O error stops the node with the error (fatal log, onFatal, `closed`), and the others
 *   carry on without it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Message } from '../raft/index.js';
import type { RaftStorage } from '../storage/index.js';
import { TEST_SECRET, TestCluster } from './testing/harness.js';
import { waitFor } from './testing/support.js';
import { decodePeerFrame, dialerProof, encodeAuth, encodeMessages, newNonce } from './transport/index.js';

let cluster: TestCluster | null = null;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await cluster?.close();
  cluster = null;
});

/** Dials `address` as node `id` with the cluster secret and completes the handshake. */
async function dialAs(address: string, id: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://${address}/cluster`, { perMessageDeflate: false });
  sockets.push(ws);
  const nonce = newNonce();
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      const frame = decodePeerFrame(data);
      if (frame.kind === 'hello') {
        const proof = dialerProof(TEST_SECRET, frame.nonce, id, frame.nodeId, '127.0.0.1:9');
        ws.send(encodeAuth(id, '127.0.0.1:9', nonce, proof));
      }
      if (frame.kind === 'welcome') resolve();
    });
    ws.once('close', (code) => reject(new Error(`closed ${code}`)));
  });
  return ws;
}

const frame = (m: Message) => Buffer.concat(encodeMessages([m])[0]!.parts);

describe('hostile peers', () => {
  it('refuses a node with the wrong cluster secret while the others keep committing', async () => {
    cluster = await TestCluster.start({ size: 3 });
    await cluster.waitForLeader();
    await cluster.kill('n3');
    const wrong = await cluster.restart('n3', { secret: 'not-the-cluster-secret' });
    const during = await cluster.propose('while-n3-refused');
    const others = ['n1', 'n2'].map((id) => cluster!.node(id));
    await waitFor(
      () => others.some((n) => n.log.find('failed authentication').length > 0),
      'refusal logged by a member',
    );
    await waitFor(() => wrong.log.find('refused our authentication').length > 0, 'refusal logged by n3');
    expect(wrong.app.texts()).not.toContain('while-n3-refused');
    expect(wrong.driver.status().appliedIndex).toBeLessThan(during.index);
    await cluster.kill('n3');
    await cluster.restart('n3');
    await cluster.waitForApplied(during.index);
    expect(cluster.node('n3').app.texts()).toContain('while-n3-refused');
  });

  it('drops garbage and invalid messages from an authenticated peer without disturbing the leader', async () => {
    // A long election timeout, so that only the garbage could unseat the leader on a busy machine.
    cluster = await TestCluster.start({ size: 3, electionTimeoutMs: 1000, heartbeatMs: 50 });
    const leader = await cluster.waitForLeader();
    await cluster.propose('before');
    const term = leader.driver.status().term;
    const last = leader.driver.status().lastIndex;
    const envelope = { group: 1, from: 'intruder', to: leader.id, term };
    for (const target of cluster.alive()) {
      const ws = await dialAs(target.address, 'intruder');
      const to = { ...envelope, to: target.id };
      ws.send(Buffer.from([0xc1, 0x00, 0xff]));
      ws.send(frame({ ...to, type: 'heartbeat', commit: 1, readSeq: 0 }).subarray(0, 5));
      ws.send(frame({ ...to, type: 'append', prevIndex: 0, prevTerm: term + 5, commit: 0, entries: [] }));
      ws.send(
        frame({
          ...to,
          type: 'snapshot',
          meta: { index: 0, term: 0, conf: { voters: [], learners: [] } },
          sizeBytes: 1,
          offset: 0,
          length: 1,
          done: true,
          data: new Uint8Array(1),
        }),
      );
      // Well formed, but contradicting what the receiver knows: a second leader in this term, acks beyond the log.
      ws.send(frame({ ...to, type: 'heartbeat', commit: last + 1000, readSeq: 0 }));
      ws.send(
        frame({ ...to, type: 'appendResp', reject: false, index: last + 1000, hintIndex: 0, hintTerm: 0 }),
      );
      ws.send(frame({ ...to, type: 'voteResp', reject: false }));
      ws.send(frame({ ...to, group: 7, type: 'timeoutNow' }));
    }
    const after = await cluster.propose('after-garbage');
    await cluster.waitForApplied(after.index);
    expect(cluster.leader()).toBe(leader);
    expect(leader.driver.status().term).toBe(term);
    for (const node of cluster.alive()) {
      expect(node.fatal).toEqual([]);
      expect(node.app.texts()).toEqual(['before', 'after-garbage']);
    }
    const dropped = cluster.alive().flatMap((n) => n.log.find('dropped a bad frame'));
    expect(dropped.length).toBeGreaterThanOrEqual(3 * 4);
  });

  it('bounds what the leader queues for a stalled follower, which catches up once it resumes', async () => {
    const queuedBytesMax = 256 * 1024;
    cluster = await TestCluster.start({
      size: 3,
      electionTimeoutMs: 1000,
      heartbeatMs: 50,
      transportLimits: { queuedBytesMax, pingIntervalMs: 60_000 },
      // A wide in-flight window, so the leader keeps sending past what the kernel's socket buffers hold.
      raftLimits: { maxInflightBytes: 64 * 1024 * 1024, maxInflightAppends: 4096 },
    });
    const leader = await cluster.waitForLeader();
    const stalled = cluster.alive().find((n) => n !== leader)!;
    await cluster.propose('before-stall');
    stalled.server.pause();
    const big = 'b'.repeat(64 * 1024);
    const link = () => leader.transport.peers().find((p) => p.peer === stalled.id)!;
    for (let round = 0; round < 40 && link().framesDropped === 0; round++)
      await cluster.proposeMany(16, `${big}-`);
    expect(link().framesDropped).toBeGreaterThan(0);
    expect(link().queuedBytes).toBeLessThanOrEqual(queuedBytesMax);
    expect(cluster.leader()).toBe(leader);
    stalled.server.resume();
    const last = await cluster.propose('after-stall');
    await cluster.waitForApplied(last.index);
    expect(stalled.app.texts()).toEqual(leader.app.texts());
  });

  it('stops a node whose storage fails, reporting the error, while the others carry on', async () => {
    cluster = await TestCluster.start({ size: 3 });
    const leader = await cluster.waitForLeader();
    await cluster.propose('before-failure');
    const victim = cluster.alive().find((n) => n !== leader)!;
    await cluster.kill(victim.id);
    let failWrites = false;
    const broken = (storage: RaftStorage): RaftStorage => ({
      recover: () => storage.recover(),
      write: (batch, done) =>
        failWrites ? setImmediate(() => done(new Error('EIO: disk on fire'))) : storage.write(batch, done),
      createSnapshot: (meta, options) => storage.createSnapshot(meta, options),
      openSnapshot: () => storage.openSnapshot(),
      compact: (index) => storage.compact(index),
      close: (done) => storage.close(done),
    });
    const node = await cluster.restart(victim.id, { wrapStorage: broken });
    await cluster.waitForApplied(leader.driver.status().commitIndex, [node]);
    failWrites = true;
    await cluster.propose('after-failure');
    const reason = await node.driver.closed;
    expect(reason?.message).toMatch(/disk on fire/);
    expect(node.fatal.map((e) => e.message)).toEqual([reason!.message]);
    expect(node.log.find('raft node failed')).toHaveLength(1);
    expect(node.driver.propose(new Uint8Array([1]))).toBeNull();
    node.alive = false;
    await cluster.propose('still-committing');
  });
});
