/**
 * Replication throughput through the whole stack: 1 KiB proposals on the leader of a 3-node
 * in-process cluster go through the driver, the core, FileStorage (fdatasync per group) on every
 * node, and the peer transport over loopback WebSockets; a proposal counts once the leader applied
 * it (committed by a majority, durable). All three nodes share this process's single core.
 *
 *   npx tsx bench/micro/cluster/replication.ts [--seconds 10] [--entry-bytes 1024]
 *       [--window 4096] [--per-turn 256] [--random-mask]
 *
 * `--window` caps proposals in flight (proposed, not yet applied); `--per-turn` caps proposals per
 * event-loop turn, like the runtime's batcher flushing once per turn.
 */
import { parseArgs } from 'node:util';
import { BenchCluster } from './bench-cluster.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    'entry-bytes': { type: 'string', default: '1024' },
    window: { type: 'string', default: '4096' },
    'per-turn': { type: 'string', default: '256' },
    'random-mask': { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const entryBytes = Number(values['entry-bytes']);
const window = Number(values.window);
const perTurn = Number(values['per-turn']);

const cluster = new BenchCluster({
  size: 3,
  timing: { tickMs: 50, electionTimeoutMs: 1000, heartbeatMs: 100 },
  randomMask: values['random-mask'],
});
await cluster.start();
const leader = await cluster.waitForLeader();
const payloads = Array.from({ length: 64 }, (_, i) => new Uint8Array(entryBytes).fill(i));

let outstanding = 0;
let proposed = 0;
let committed = 0;
let measuring = false;
let running = true;
let scheduled = false;
const proposedAt = new Map<number, number>();
const latenciesMs: number[] = [];

leader.app.onApply = (entry) => {
  const at = proposedAt.get(entry.index);
  if (at === undefined) return;
  proposedAt.delete(entry.index);
  outstanding--;
  if (measuring) {
    committed++;
    latenciesMs.push(performance.now() - at);
  }
  schedulePump();
};

function schedulePump(): void {
  if (scheduled || !running) return;
  scheduled = true;
  setImmediate(pump);
}

function pump(): void {
  scheduled = false;
  for (let n = 0; n < perTurn && outstanding < window; n++) {
    const at = leader.driver.propose(payloads[proposed % payloads.length]!);
    if (at === null) break;
    proposedAt.set(at.index, performance.now());
    proposed++;
    outstanding++;
  }
  if (outstanding < window) setTimeout(schedulePump, 1);
}

schedulePump();
await new Promise((resolve) => setTimeout(resolve, 1000)); // warm-up
measuring = true;
const cpuBefore = process.cpuUsage();
const started = performance.now();
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const elapsedS = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
measuring = false;
running = false;

latenciesMs.sort((a, b) => a - b);
const pct = (p: number) =>
  latenciesMs[Math.min(latenciesMs.length - 1, Math.floor((p / 100) * latenciesMs.length))] ?? 0;
const perSecond = committed / elapsedS;
const linkStats = leader.transport.peers();
console.log(
  JSON.stringify(
    {
      entryBytes,
      window,
      perTurn,
      randomMask: values['random-mask'],
      seconds: Number(elapsedS.toFixed(1)),
      committedPerSecond: Math.round(perSecond),
      mbPerSecond: Number(((perSecond * entryBytes) / 1e6).toFixed(1)),
      latencyMs: { p50: round(pct(50)), p99: round(pct(99)), max: round(pct(100)) },
      cpuPercentOfOneCore: Math.round(((cpu.user + cpu.system) / 1e6 / elapsedS) * 100),
      framesDropped: linkStats.reduce((n, p) => n + p.framesDropped, 0),
    },
    null,
    2,
  ),
);
await cluster.close();

function round(ms: number): number {
  return Number(ms.toFixed(2));
}
