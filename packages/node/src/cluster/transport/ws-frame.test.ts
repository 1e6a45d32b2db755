/**
 * Frames written straight onto a `ws` client's socket: a real `ws` server receives each as exactly
 * the message its parts make, for every length encoding, in order with the frames, pings and
 * fragments `ws` itself writes on the same socket; the parts reach the socket as the very same
 * objects (no copy); and a frame whose parts disagree with its length is refused before a byte goes.
 */
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { writeZeroMaskFrame, zeroMaskFrameHeader } from './ws-frame.js';

let server: WebSocketServer;
let port: number;
const received: Buffer[] = [];
let onReceived: () => void = () => {};

beforeAll(async () => {
  server = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 1 << 24 });
  server.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      received.push(Buffer.from(data));
      onReceived();
    });
  });
  await new Promise<void>((resolve) => server.on('listening', resolve));
  const address = server.address();
  if (typeof address === 'string' || address === null) throw new Error('no port');
  port = address.port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function connect(): Promise<{ ws: WebSocket; socket: Socket }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, {
    perMessageDeflate: false,
    generateMask: (mask) => mask.fill(0),
  });
  let socket: Socket | null = null;
  ws.on('upgrade', (response) => {
    socket = response.socket;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  if (socket === null) throw new Error('no socket from the upgrade');
  return { ws, socket };
}

async function waitForMessages(count: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (received.length < count) {
    if (Date.now() > deadline) throw new Error(`got ${received.length} of ${count} messages`);
    await new Promise<void>((resolve) => {
      onReceived = resolve;
      setTimeout(resolve, 50);
    });
  }
}

const filled = (length: number, seed: number) => {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
};

describe('zero-mask frames written beside ws', () => {
  it('encodes the three length forms with the mask bit and a zero key', () => {
    expect([...zeroMaskFrameHeader(5)]).toEqual([0x82, 0x85, 0, 0, 0, 0]);
    expect([...zeroMaskFrameHeader(126)]).toEqual([0x82, 0xfe, 0, 126, 0, 0, 0, 0]);
    const long = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0x11, 0x70, 0, 0, 0, 0]; // 70,000 in 64 bits
    expect([...zeroMaskFrameHeader(70_000)]).toEqual(long);
    expect(() => zeroMaskFrameHeader(-1)).toThrow(RangeError);
  });

  it('delivers each frame as exactly its joined parts, in order with ws frames and pings', async () => {
    received.length = 0;
    const { ws, socket } = await connect();
    const expected: Buffer[] = [];
    const sizes = [0, 1, 125, 126, 65_535, 65_536, 300_000];
    let written = 0;
    socket.cork();
    sizes.forEach((size, i) => {
      // Three parts: a header, the body, a tail (the shape of an append with one entry).
      const parts = [filled(3, i), filled(size, i + 100), filled(2, i + 200)];
      writeZeroMaskFrame(socket, parts, size + 5, () => written++);
      expected.push(Buffer.concat(parts));
      if (i % 2 === 0) {
        ws.ping();
        const own = Buffer.from(`ws frame ${i}`);
        ws.send(own);
        expected.push(own);
      }
    });
    socket.uncork();
    // A fragmented message of ws's own between two direct frames stays whole too.
    ws.send(Buffer.from('frag-'), { fin: false });
    ws.send(Buffer.from('ment'), { fin: true });
    expected.push(Buffer.from('frag-ment'));
    writeZeroMaskFrame(socket, [filled(10, 9)], 10, () => written++);
    expected.push(Buffer.from(filled(10, 9)));
    await waitForMessages(expected.length);
    expect(received.map((b) => b.length)).toEqual(expected.map((b) => b.length));
    expect(received.every((got, i) => got.equals(expected[i]!))).toBe(true);
    expect(written).toBe(sizes.length + 1);
    ws.close();
  });

  it('hands the parts to the socket as they are, with one header in front', async () => {
    const chunks: unknown[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    const body = filled(1000, 1);
    const prefix = filled(4, 2);
    const written = new Promise<void>((resolve) =>
      writeZeroMaskFrame(sink, [prefix, body], 1004, () => resolve()),
    );
    expect(chunks).toHaveLength(3);
    expect([...(chunks[0] as Uint8Array)]).toEqual([...zeroMaskFrameHeader(1004)]);
    // The stream wraps a Uint8Array in a Buffer over the same memory: same bytes, not a copy.
    const sameMemory = (chunk: unknown, part: Uint8Array) => {
      const got = chunk as Uint8Array;
      return got.buffer === part.buffer && got.byteOffset === part.byteOffset && got.length === part.length;
    };
    expect(sameMemory(chunks[1], prefix)).toBe(true);
    expect(sameMemory(chunks[2], body)).toBe(true);
    await written;
  });

  it('refuses parts that disagree with the length, writing nothing', () => {
    const chunks: unknown[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    expect(() => writeZeroMaskFrame(sink, [filled(3, 0)], 4, () => {})).toThrow(/3 bytes, header says 4/);
    expect(chunks).toHaveLength(0);
  });
});
