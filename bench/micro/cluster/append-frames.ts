/**
 * How to put AppendEntries on peer sockets most cheaply: one leader process sends the same appends
 * to two follower processes (real `ws` servers on loopback, as in the transport) and every process
 * reports the CPU it spent. Strategies:
 *
 * - `copy`: entry bodies copied once into a shared block; header and block as two `ws.send`
 *   fragments (the transport before it adopted `frame`);
 * - `copy-corked`: the same, with the socket corked around each batch of frames;
 * - `fragments`: no copy: the header, each entry's small msgpack prefix and each body as its own
 *   `ws.send` fragment, the socket corked around each batch (one writev);
 * - `frame`: no copy: one WebSocket frame whose payload is written as the header, the prefixes and
 *   the body views, straight onto the corked socket (zero mask, so nothing is XORed): the
 *   transport's path (ws-frame.ts).
 *
 *   npx tsx bench/micro/cluster/append-frames.ts [--mb 400] [--entries 1] [--entry-bytes 131072]
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';
import { type EncodedFrame, encodeMessages } from '../../../packages/node/src/cluster/transport/codec.js';
import { writeZeroMaskFrame } from '../../../packages/node/src/cluster/transport/ws-frame.js';
import type { Entry } from '../../../packages/node/src/raft/index.js';

const STRATEGIES = ['copy', 'copy-corked', 'fragments', 'frame'] as const;
type Strategy = (typeof STRATEGIES)[number];
/** Bulk bytes handed to a socket and not yet written, as the transport allows. */
const IN_SOCKET_BYTES_MAX = 256 * 1024;

interface CpuReport {
  userMs: number;
  systemMs: number;
  bytes: number;
  messages: number;
}

const { values } = parseArgs({
  options: {
    receiver: { type: 'boolean', default: false },
    mb: { type: 'string', default: '400' },
    entries: { type: 'string', default: '1' },
    'entry-bytes': { type: 'string', default: String(128 * 1024) },
    only: { type: 'string' },
    rounds: { type: 'string', default: '3' },
  },
});

// ---------------------------------------------------------------------------------------------
// Follower side: count messages and bytes, report CPU when told.

function runReceiver(): void {
  // Never outlive the sender, even when it is killed.
  process.on('disconnect', () => process.exit(0));
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 64 * 1024 * 1024 });
  let started: NodeJS.CpuUsage | null = null;
  let bytes = 0;
  let messages = 0;
  server.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      if (data.length === 1) {
        // Control: 0 = start counting, 1 = report.
        if (data[0] === 0) {
          started = process.cpuUsage();
          bytes = 0;
          messages = 0;
        } else {
          const used = process.cpuUsage(started ?? undefined);
          const report: CpuReport = {
            userMs: used.user / 1000,
            systemMs: used.system / 1000,
            bytes,
            messages,
          };
          ws.send(JSON.stringify(report));
        }
        return;
      }
      if (data[0] !== 0x9a) throw new Error(`not an append frame: ${data[0]}`);
      bytes += data.length;
      messages++;
    });
  });
  server.on('listening', () => {
    const address = server.address();
    if (typeof address === 'string' || address === null) throw new Error('no port');
    process.send?.({ port: address.port });
  });
}

// ---------------------------------------------------------------------------------------------
// Leader side

interface Peer {
  child: ChildProcess;
  ws: WebSocket;
  socket: Socket;
  inSocketBytes: number;
}

async function startPeer(): Promise<Peer> {
  const child = fork(fileURLToPath(import.meta.url), ['--receiver'], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (m: { port: number }) => resolve(m.port)),
  );
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, {
    perMessageDeflate: false,
    generateMask: (m) => m.fill(0),
  });
  const socket = await new Promise<Socket>((resolve, reject) => {
    let upgraded: Socket | null = null;
    ws.once('upgrade', (res) => {
      upgraded = res.socket as Socket;
    });
    ws.once('open', () => (upgraded ? resolve(upgraded) : reject(new Error('no upgrade socket'))));
    ws.once('error', reject);
  });
  return { child, ws, socket, inSocketBytes: 0 };
}

function makeAppend(first: number, count: number, pool: Uint8Array[]): EncodedFrame {
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    entries.push({ index: first + i, term: 3, type: 0, data: pool[(first + i) % pool.length]! });
  }
  const message = {
    type: 'append' as const,
    group: 1,
    from: 'n1',
    to: 'n2',
    term: 3,
    prevIndex: first - 1,
    prevTerm: 3,
    commit: first - 1,
    entries,
  };
  return encodeMessages([message])[0]!;
}

/** Shared by every peer: the entry parts of one append joined into one block (the copy strategies). */
const blocks = new WeakMap<EncodedFrame, Buffer>();

/** Hands one append to one peer's socket with `strategy`; `done` runs when it is written. */
function sendAppend(peer: Peer, strategy: Strategy, frame: EncodedFrame, done: () => void): void {
  const { ws, socket } = peer;
  const { parts } = frame;
  switch (strategy) {
    case 'copy':
    case 'copy-corked': {
      let block = blocks.get(frame);
      if (block === undefined) {
        block = Buffer.concat(parts.slice(1));
        blocks.set(frame, block);
      }
      ws.send(parts[0]!, { binary: true, fin: false });
      ws.send(block, { binary: true, fin: true }, done);
      return;
    }
    case 'fragments':
      parts.forEach((part, i) => {
        const fin = i === parts.length - 1;
        ws.send(part, { binary: true, fin }, fin ? done : undefined);
      });
      return;
    case 'frame':
      // The transport's own path.
      writeZeroMaskFrame(socket, parts, frame.bytes, done);
      return;
  }
}

async function control(peer: Peer, code: number): Promise<CpuReport | null> {
  if (code === 0) {
    peer.ws.send(Buffer.from([0]));
    return null;
  }
  const reply = new Promise<CpuReport>((resolve) =>
    peer.ws.once('message', (data) => resolve(JSON.parse(String(data)) as CpuReport)),
  );
  peer.ws.send(Buffer.from([1]));
  return reply;
}

async function runOne(peers: Peer[], strategy: Strategy, totalBytes: number, pool: Uint8Array[]) {
  const entriesPerAppend = Number(values.entries);
  for (const peer of peers) await control(peer, 0);
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  let sent = 0;
  let index = 1;
  await new Promise<void>((resolve) => {
    let pending = 0;
    const pump = (): void => {
      const cork = strategy !== 'copy';
      if (cork) for (const peer of peers) peer.socket.cork();
      while (sent < totalBytes && peers.every((p) => p.inSocketBytes < IN_SOCKET_BYTES_MAX)) {
        // One encoding per append, shared by both peers (as the transport does per Ready).
        const frame = makeAppend(index, entriesPerAppend, pool);
        index += entriesPerAppend;
        for (const peer of peers) {
          peer.inSocketBytes += frame.bytes;
          pending++;
          sendAppend(peer, strategy, frame, () => {
            peer.inSocketBytes -= frame.bytes;
            pending--;
            if (sent >= totalBytes && pending === 0) resolve();
            else setImmediate(pump);
          });
        }
        sent += frame.bytes;
      }
      if (cork) for (const peer of peers) peer.socket.uncork();
    };
    pump();
  });
  const used = process.cpuUsage(cpuStart);
  const wallMs = performance.now() - started;
  const reports = await Promise.all(peers.map((p) => control(p, 1)));
  return { wallMs, leaderMs: (used.user + used.system) / 1000, reports: reports as CpuReport[] };
}

async function runSender(): Promise<void> {
  const entryBytes = Number(values['entry-bytes']);
  const totalBytes = Number(values.mb) * 1024 * 1024;
  const pool = Array.from({ length: 16 }, (_, i) => new Uint8Array(entryBytes).fill(i + 1));
  const strategies = values.only ? (values.only.split(',') as Strategy[]) : [...STRATEGIES];
  const peers = [await startPeer(), await startPeer()];
  const rows: string[] = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const strategy of strategies) {
      const r = await runOne(peers, strategy, totalBytes, pool);
      const mb = totalBytes / 1024 / 1024;
      const followerMs = r.reports.map((x) => x.userMs + x.systemMs);
      rows.push(
        [
          strategy.padEnd(12),
          `${(mb / (r.wallMs / 1000)).toFixed(0).padStart(5)} MB/s`,
          `leader ${((r.leaderMs / mb) * 1000).toFixed(0).padStart(5)} µs/MB`,
          `followers ${followerMs.map((ms) => ((ms / mb) * 1000).toFixed(0).padStart(5)).join(' ')} µs/MB`,
        ].join('  '),
      );
      process.stdout.write(`${rows.at(-1)}\n`);
    }
  }
  for (const peer of peers) {
    peer.ws.terminate();
    peer.child.kill();
  }
}

if (values.receiver) runReceiver();
else await runSender();
