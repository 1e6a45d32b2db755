/**
 * Micro-benchmark of the Raft core alone: three cores in one process replicate a stream of
 * entries with instant persistence and direct message hand-off (no encoding, no I/O), so the
 * figure is the core's own CPU cost per entry, summed over leader and followers.
 *
 *   npx tsx bench/micro/raft/replication.ts [entries] [entryBytes] [perTurn]
 *
 * One "turn" proposes `perTurn` entries on the leader and then runs every Ready to quiescence,
 * the way a driver handles one event-loop turn's worth of proposals.
 */
import type { Message } from '../../../packages/node/src/raft/messages.js';
import { RaftNode } from '../../../packages/node/src/raft/node.js';
import type { Ready } from '../../../packages/node/src/raft/ready.js';

interface BenchNode {
  raft: RaftNode;
  applied: number;
}

function makeNode(id: string, voters: string[]): BenchNode {
  let seed = id.charCodeAt(1);
  const raft = new RaftNode({
    id,
    group: 1,
    initialVoters: voters,
    recovered: { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] },
    randomInt: (bound) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % bound;
    },
  });
  return { raft, applied: 0 };
}

function run(total: number, entryBytes: number, perTurn: number): void {
  const voters = ['n1', 'n2', 'n3'];
  const nodes = new Map(voters.map((id) => [id, makeNode(id, voters)]));
  const inbox: Message[] = [];
  const handle = (node: BenchNode, rd: Ready) => {
    for (const m of rd.messages) inbox.push(m);
    for (const m of rd.messagesAfterPersist) inbox.push(m);
    node.raft.persisted(rd.id);
    node.applied += rd.committedEntries.length;
  };
  const settle = () => {
    for (let busy = true; busy; ) {
      busy = false;
      for (const node of nodes.values()) {
        while (node.raft.hasReady()) {
          handle(node, node.raft.ready());
          busy = true;
        }
      }
      for (let m = inbox.shift(); m !== undefined; m = inbox.shift()) {
        nodes.get(m.to)!.raft.step(m);
        busy = true;
      }
    }
  };
  const leader = nodes.get('n1')!;
  leader.raft.campaign();
  settle();
  const payload = new Uint8Array(entryBytes).fill(7);
  const started = performance.now();
  for (let proposed = 0; proposed < total; ) {
    for (let i = 0; i < perTurn && proposed < total; i++, proposed++) {
      const result = leader.raft.propose(payload);
      if (!result.ok) throw new Error(`proposal refused: ${result.reason}`);
    }
    settle();
  }
  for (let i = 0; i < 2; i++) {
    leader.raft.tick(); // a heartbeat carries the final commit index to the followers
    settle();
  }
  const elapsedMs = performance.now() - started;
  const appliedEverywhere = Math.min(...[...nodes.values()].map((n) => n.applied)) - 1; // minus the no-op
  const perSecond = Math.round((appliedEverywhere / elapsedMs) * 1000);
  const microsPerEntry = ((elapsedMs * 1000) / appliedEverywhere).toFixed(2);
  process.stdout.write(
    `raft core: ${appliedEverywhere} entries of ${entryBytes} B, ${perTurn} per turn, 3 nodes in one process: ` +
      `${perSecond} entries/s (${microsPerEntry} µs per entry for all three cores)\n`,
  );
}

const [total = 200_000, entryBytes = 1024, perTurn = 100] = process.argv.slice(2).map(Number);
run(total, entryBytes, perTurn);
