/**
 * Proves the Node transport: binary frames arrive as bytes, and a frame above the size cap closes
 * the connection instead of being handed over. Liveness is the connection's job: see
 * liveness.test.ts.
 */

import { afterEach, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { waitFor } from './testing/wait.js';
import { openWebSocket } from './transport.js';
import { createNodeWebSocketFactory } from './transport-node.js';

const servers: WebSocketServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function listen(firstFrame: Uint8Array): Promise<string> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (socket) => socket.send(firstFrame));
  return `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
}

it('delivers binary frames as bytes', async () => {
  const url = await listen(new Uint8Array([1, 2, 3]));
  const frames: number[][] = [];
  const socket = await openWebSocket(createNodeWebSocketFactory(), url, {
    onFrame: (frame) => frames.push([...frame]),
    onClose: () => {},
  });
  await waitFor(() => frames.length === 1, 'the first frame');
  expect(frames).toEqual([[1, 2, 3]]);
  socket.close();
});

it('closes the connection on a frame above the size cap', async () => {
  const url = await listen(new Uint8Array(64 * 1024 * 1024 + 1));
  let closedWith: number | undefined;
  let frames = 0;
  await openWebSocket(createNodeWebSocketFactory(), url, {
    onFrame: () => frames++,
    onClose: (code) => {
      closedWith = code;
    },
  });
  await waitFor(() => closedWith !== undefined, 'the oversized frame to close the connection', 10_000);
  expect(frames).toBe(0);
});
