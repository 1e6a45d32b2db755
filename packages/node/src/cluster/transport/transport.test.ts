/**
 * The peer transport on real loopback WebSockets: links authenticate both ways and carry every
 * message type; a wrong cluster secret is refused and logged on both sides with no Raft traffic;
 * frames before authentication close the connection; garbage, truncated msgpack, invalid Raft
 * messages, forged senders and unknown groups from an authenticated peer are dropped (and logged)
 * while later valid frames still arrive; a stalled peer's queue stays within its cap with control
 * frames kept ahead of bulk; and a link comes back after its peer restarts, at once when the peer
 * links to us first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { type AppendMessage, EntryType, type Message } from '../../raft/index.js';
import { captureLogger, listenForPeers, type TestServer, waitFor } from '../testing/support.js';
import { dialerProof, newNonce, sameProof, serverProof } from './auth.js';
import { decodePeerFrame, encodeAuth, encodeHello, encodeMessages, encodeWelcome } from './codec.js';
import { CloseCode } from './outbound.js';
import { type PeerHandler, PeerTransport, type PeerTransportOptions } from './transport.js';

const SECRET = 'correct horse battery staple';

interface Node {
  transport: PeerTransport;
  server: TestServer;
  received: Message[];
  unreachable: string[];
  log: ReturnType<typeof captureLogger>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startNode(id: string, options: Partial<PeerTransportOptions> = {}, port = 0): Promise<Node> {
  const log = captureLogger('debug', { node: id });
  let transport: PeerTransport | null = null;
  const server = await listenForPeers(
    (req, socket, head) => transport!.handleUpgrade(req, socket, head),
    port,
  );
  transport = new PeerTransport({
    nodeId: id,
    advertise: server.address,
    clusterSecret: SECRET,
    logger: log.logger,
    ...options,
  });
  const node: Node = { transport, server, received: [], unreachable: [], log };
  const handler: PeerHandler = {
    receive: (m) => node.received.push(m),
    unreachable: (peer) => node.unreachable.push(peer),
  };
  transport.registerGroup(1, handler);
  cleanups.push(async () => {
    transport!.terminate();
    await server.close();
  });
  return node;
}

const heartbeat = (from: string, to: string, commit = 1): Message => ({
  group: 1,
  from,
  to,
  term: 3,
  type: 'heartbeat',
  commit,
  readSeq: 0,
});

const append = (from: string, to: string, index: number, bytes: number): AppendMessage => ({
  group: 1,
  from,
  to,
  term: 3,
  type: 'append',
  prevIndex: index - 1,
  prevTerm: 3,
  commit: 0,
  entries: [{ index, term: 3, type: EntryType.Normal, data: new Uint8Array(bytes).fill(index & 0xff) }],
});

/** A hand-rolled dialer: authenticates as `id` with `secret` and returns the open socket. */
async function dialAs(address: string, id: string, secret = SECRET): Promise<WebSocket> {
  const ws = new WebSocket(`ws://${address}/cluster`, { perMessageDeflate: false });
  cleanups.push(() => ws.terminate());
  const nonce = newNonce();
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data: Buffer) => {
      const frame = decodePeerFrame(data);
      if (frame.kind === 'hello')
        ws.send(
          encodeAuth(
            id,
            '127.0.0.1:1',
            nonce,
            dialerProof(secret, frame.nonce, id, frame.nodeId, '127.0.0.1:1'),
          ),
        );
      if (frame.kind === 'welcome') resolve();
    });
    ws.once('close', (code) => reject(new Error(`closed ${code}`)));
  });
  return ws;
}

describe('peer transport', () => {
  it('authenticates both ways and carries every kind of message, entries included', async () => {
    const a = await startNode('n1');
    const b = await startNode('n2');
    a.transport.setPeer('n2', b.server.address);
    b.transport.setPeer('n1', a.server.address);
    const big = append('n1', 'n2', 5, 300_000);
    a.transport.send([
      heartbeat('n1', 'n2'),
      big,
      { group: 1, from: 'n1', to: 'n2', term: 3, type: 'timeoutNow' },
    ]);
    b.transport.send([{ group: 1, from: 'n2', to: 'n1', term: 3, type: 'heartbeatResp', readSeq: 0 }]);
    await waitFor(() => b.received.length === 3 && a.received.length === 1, 'messages both ways');
    // Control frames may overtake bulk ones; each kind keeps its order.
    expect(b.received.map((m) => m.type).sort()).toEqual(['append', 'heartbeat', 'timeoutNow']);
    const got = b.received.find((m) => m.type === 'append');
    expect(got).toMatchObject({ prevIndex: 4, entries: [{ index: 5, term: 3 }] });
    if (got?.type === 'append')
      expect(
        Buffer.compare(got.entries[0]!.data, big.type === 'append' ? big.entries[0]!.data : new Uint8Array()),
      ).toBe(0);
    expect(a.transport.isConnected('n2')).toBe(true);
    expect(b.transport.hasInbound('n1')).toBe(true);
    expect(b.transport.announcedAddress('n1')).toBe(a.server.address);
  });

  it('carries many multi-entry appends whole and in order, in both masking modes', async () => {
    for (const randomMask of [false, true]) {
      const a = await startNode('n1', { randomMask });
      const b = await startNode('n2');
      a.transport.setPeer('n2', b.server.address);
      const sizes = [0, 1, 200, 70_000, 3];
      const sent: AppendMessage[] = [];
      for (let k = 0; k < 60; k++) {
        const first = 1 + k * sizes.length;
        const entries = sizes.map((size, i) => ({
          index: first + i,
          term: 3,
          type: EntryType.Normal,
          data: new Uint8Array(size).fill((first + i) & 0xff),
        }));
        sent.push({ ...append('n1', 'n2', first, 0), entries });
      }
      // Several sends per turn and several turns: frames share pumps (one writev) and wait for room.
      for (let k = 0; k < sent.length; k += 6) {
        a.transport.send(sent.slice(k, k + 6));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await waitFor(
        () => b.received.length === sent.length,
        `${sent.length} appends (randomMask ${randomMask})`,
      );
      const got = b.received.map((m) => (m.type === 'append' ? m.entries : []));
      expect(got.flat().map((e) => e.index)).toEqual(sent.flatMap((m) => m.entries.map((e) => e.index)));
      for (const entry of got.flat()) {
        const size = sizes[(entry.index - 1) % sizes.length]!;
        expect(entry.data.length).toBe(size);
        expect(entry.data.every((byte) => byte === (entry.index & 0xff))).toBe(true);
      }
    }
  });

  it('works with random masking too', async () => {
    const a = await startNode('n1', { randomMask: true });
    const b = await startNode('n2');
    a.transport.setPeer('n2', b.server.address);
    const sent = append('n1', 'n2', 9, 70_000);
    a.transport.send([sent, sent]);
    await waitFor(() => b.received.length === 2, 'two appends');
    const data = (m: Message | undefined) => (m?.type === 'append' ? m.entries[0]!.data : null);
    expect(Buffer.compare(data(b.received[1])!, data(sent)!)).toBe(0);
    expect(data(sent)!.every((byte) => byte === 9)).toBe(true); // the shared entry bytes were not masked in place
  });

  it('refuses a wrong cluster secret on both sides, logs it, and carries nothing', async () => {
    const a = await startNode('n1', { clusterSecret: 'not the secret' });
    const b = await startNode('n2');
    a.transport.setPeer('n2', b.server.address);
    a.transport.send([heartbeat('n1', 'n2')]);
    await waitFor(() => b.log.find('failed authentication').length > 0, 'server-side log');
    await waitFor(() => a.log.find('refused our authentication').length > 0, 'dialer-side log');
    expect(b.received).toEqual([]);
    expect(a.transport.isConnected('n2')).toBe(false);
    expect(a.unreachable).toContain('n2');
    expect(b.log.find('failed authentication')[0]).toMatchObject({ claimedPeer: 'n1' });
  });

  it('refuses a server that cannot prove the secret', async () => {
    const a = await startNode('n1');
    // A server that knows its id but not the secret: answers AUTH with a made-up proof.
    const wss = new WebSocketServer({ noServer: true });
    const fake = await listenForPeers((req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send(encodeHello('n2', newNonce()));
        ws.on('message', () => ws.send(encodeWelcome(new Uint8Array(32))));
      }),
    );
    cleanups.push(() => fake.close());
    a.transport.setPeer('n2', fake.address);
    await waitFor(() => a.log.find('failed to prove the cluster secret').length > 0, 'refusal logged');
    expect(a.transport.isConnected('n2')).toBe(false);
  });

  it('refuses to talk to a different node than the one dialed', async () => {
    const a = await startNode('n1');
    const impostor = await startNode('n3');
    a.transport.setPeer('n2', impostor.server.address);
    await waitFor(() => a.log.find('a different node answers').length > 0, 'log of the wrong node');
    expect(a.transport.isConnected('n2')).toBe(false);
  });

  it('closes a connection that sends Raft frames before authenticating', async () => {
    const b = await startNode('n2');
    const ws = new WebSocket(`ws://${b.server.address}/cluster`);
    cleanups.push(() => ws.terminate());
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.once('message', () => ws.send(encodeMessages([heartbeat('n1', 'n2')])[0]!.parts[0]!));
    expect(await closed).toBe(CloseCode.ProtocolError);
    expect(b.received).toEqual([]);
  });

  it('drops garbage, truncated msgpack, invalid messages, forged senders and unknown groups from an authenticated peer', async () => {
    const b = await startNode('n2');
    const ws = await dialAs(b.server.address, 'n1');
    const valid = Buffer.from(encodeMessages([heartbeat('n1', 'n2', 5)])[0]!.parts[0]!);
    const invalidRaft = encodeMessages([{ ...append('n1', 'n2', 5, 10), prevTerm: 9 }])[0]!; // prevTerm above term
    ws.send(Buffer.from('definitely not msgpack'));
    ws.send(valid.subarray(0, valid.length - 2)); // truncated
    ws.send(Buffer.concat(invalidRaft.parts));
    ws.send(Buffer.from(encodeMessages([heartbeat('n9', 'n2')])[0]!.parts[0]!)); // claims another sender
    ws.send(Buffer.from(encodeMessages([{ ...heartbeat('n1', 'n2'), group: 42 }])[0]!.parts[0]!));
    ws.send(Buffer.from(encodeMessages([heartbeat('n1', 'n7')])[0]!.parts[0]!)); // not for us
    ws.send('a text frame');
    ws.send(encodeHello('n1', newNonce())); // a handshake frame after the handshake
    ws.send(valid);
    await waitFor(() => b.received.length === 1, 'the valid frame');
    expect(b.received[0]).toMatchObject({ type: 'heartbeat', commit: 5 });
    const reasons = b.log.find('dropped a bad frame').map((line) => String(line.reason));
    expect(reasons).toHaveLength(8);
    expect(reasons.join('\n')).toMatch(/malformed msgpack|PROTOCOL|malformed/);
    expect(reasons.join('\n')).toMatch(/invalid append/);
    expect(reasons.join('\n')).toMatch(/from n9/);
    expect(reasons.join('\n')).toMatch(/unknown group 42/);
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });

  it('closes a link that sends a frame above the size limit, and takes the peer back when it redials', async () => {
    const b = await startNode('n2', { limits: { frameMaxBytes: 4096 } });
    const ws = await dialAs(b.server.address, 'n1');
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(Buffer.concat(encodeMessages([append('n1', 'n2', 5, 8192)])[0]!.parts));
    expect(await closed).toBe(1009); // "message too big"
    expect(b.received).toEqual([]);
    const again = await dialAs(b.server.address, 'n1');
    again.send(Buffer.from(encodeMessages([heartbeat('n1', 'n2', 3)])[0]!.parts[0]!));
    await waitFor(() => b.received.length === 1, 'a frame on the new link');
  });

  it('refuses the handshake when the dialer uses the wrong secret', async () => {
    const b = await startNode('n2');
    await expect(dialAs(b.server.address, 'n1', 'wrong')).rejects.toThrow(
      `closed ${CloseCode.AuthenticationFailed}`,
    );
    expect(b.transport.hasInbound('n1')).toBe(false);
  });

  it('bounds the queue for a stalled peer, reports it unreachable, and keeps control frames ahead of bulk', async () => {
    const cap = 1024 * 1024;
    const a = await startNode('n1', { limits: { queuedBytesMax: cap, bulkInSocketBytesMax: 128 * 1024 } });
    // A peer that authenticates properly and then stops reading, like a stopped process.
    const arrivals: string[] = [];
    let serverSocket: WebSocket | null = null;
    const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
    const stalled = await listenForPeers((req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        serverSocket = ws;
        const nonce = newNonce();
        ws.send(encodeHello('n2', nonce));
        ws.on('message', (data: Buffer) => {
          const frame = decodePeerFrame(data);
          if (frame.kind === 'auth') {
            expect(sameProof(dialerProof(SECRET, nonce, 'n1', 'n2', frame.address), frame.proof)).toBe(true);
            ws.send(encodeWelcome(serverProof(SECRET, frame.nonce, 'n2', 'n1')));
            (socket as import('node:net').Socket).pause();
          } else if (frame.kind === 'raft') {
            arrivals.push(frame.message.type);
          }
        });
      }),
    );
    cleanups.push(() => {
      wss.close();
      return stalled.close();
    });
    a.transport.setPeer('n2', stalled.address);
    await waitFor(() => a.transport.isConnected('n2'), 'link up');
    for (let i = 1; i <= 200 && a.unreachable.length === 0; i++)
      a.transport.send([append('n1', 'n2', i, 64 * 1024)]);
    await waitFor(() => a.unreachable.includes('n2'), 'peer reported unreachable');
    const status = a.transport.peers()[0]!;
    expect(status.queuedBytes).toBeLessThanOrEqual(cap);
    expect(status.framesDropped).toBeGreaterThan(0);
    const bulkHandedToSocket = status.framesSent;
    a.transport.send([heartbeat('n1', 'n2')]);
    expect(a.transport.peers()[0]!.queuedBytes).toBeGreaterThan(0);
    // Let the peer read again: the heartbeat must come right after what already was in the socket.
    for (const s of [serverSocket as WebSocket | null])
      (s as unknown as { _socket: { resume(): void } })?._socket.resume();
    await waitFor(() => arrivals.includes('heartbeat'), 'heartbeat arrives', 10_000);
    expect(arrivals.indexOf('heartbeat')).toBe(bulkHandedToSocket);
  });

  it('survives a peer address that is not an address at all', async () => {
    const a = await startNode('n1');
    a.transport.setPeer('n2', 'not a host:port/with spaces');
    a.transport.send([heartbeat('n1', 'n2')]);
    await waitFor(
      () => a.log.find('bad peer address').length > 0 || a.unreachable.length > 0,
      'the dial fails',
    );
    expect(a.transport.isConnected('n2')).toBe(false);
    const b = await startNode('n2');
    a.transport.setPeer('n2', b.server.address); // corrected later
    await waitFor(() => a.transport.isConnected('n2'), 'link to the corrected address');
  });

  it('reconnects after the peer restarts on the same address', async () => {
    const a = await startNode('n1', { limits: { reconnectBaseMs: 10, reconnectMaxMs: 50 } });
    const b = await startNode('n2');
    a.transport.setPeer('n2', b.server.address);
    await waitFor(() => a.transport.isConnected('n2'), 'first link');
    b.transport.terminate();
    await b.server.close();
    await waitFor(() => a.unreachable.includes('n2'), 'link loss reported');
    const again = await startNode('n2', {}, b.server.port);
    await waitFor(() => a.transport.isConnected('n2'), 'link after restart');
    a.transport.send([heartbeat('n1', 'n2', 9)]);
    await waitFor(() => again.received.length === 1, 'message after restart');
  });

  it('dials a restarted peer at once when it links to us, instead of waiting out the backoff', async () => {
    // A backoff far longer than the test: only the peer's own link coming up can bring ours back.
    const a = await startNode('n1', { limits: { reconnectBaseMs: 60_000, reconnectMaxMs: 60_000 } });
    const b = await startNode('n2');
    const port = b.server.port;
    b.transport.terminate();
    await b.server.close();
    a.transport.setPeer('n2', b.server.address);
    a.transport.send([heartbeat('n1', 'n2')]);
    await waitFor(
      () => a.transport.peers().some((p) => p.peer === 'n2' && p.outbound === 'backoff'),
      'dial to fail',
    );
    const again = await startNode('n2', {}, port);
    again.transport.setPeer('n1', a.server.address);
    again.transport.send([heartbeat('n2', 'n1')]);
    await waitFor(() => a.transport.isConnected('n2'), 'our link back as soon as the peer linked to us');
    a.transport.send([heartbeat('n1', 'n2', 7)]);
    await waitFor(() => again.received.length === 1, 'message to the restarted peer');
  });
});
