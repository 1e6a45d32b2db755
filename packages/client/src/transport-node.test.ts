/**
 * Proves the Node transport: frames arrive as bytes, and the heartbeat drops a connection whose
 * server stops answering pings (a half-open connection) while leaving a healthy one alone.
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

async function listen(autoPong: boolean): Promise<{ server: WebSocketServer; url: string }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong });
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (socket) => socket.send(new Uint8Array([1, 2, 3])));
  return { server, url: `ws://127.0.0.1:${(server.address() as { port: number }).port}` };
}

it('delivers binary frames and closes the connection of a server that stops answering pings', async () => {
  const { url } = await listen(false);
  const frames: number[][] = [];
  let closedWith: number | undefined;
  const factory = createNodeWebSocketFactory({ heartbeatIntervalMs: 20 });
  await openWebSocket(factory, url, {
    onFrame: (frame) => frames.push([...frame]),
    onClose: (code) => {
      closedWith = code;
    },
  });
  await waitFor(() => closedWith !== undefined, 'the heartbeat to drop the silent connection');
  expect(frames).toEqual([[1, 2, 3]]);
  expect(closedWith).toBe(1006);
});

it('keeps a connection whose server answers pings', async () => {
  const { server, url } = await listen(true);
  let pings = 0;
  server.on('connection', (socket) => socket.on('ping', () => pings++));
  let closed = false;
  const socket = await openWebSocket(createNodeWebSocketFactory({ heartbeatIntervalMs: 10 }), url, {
    onFrame: () => {},
    onClose: () => {
      closed = true;
    },
  });
  await waitFor(() => pings >= 5, 'five heartbeats');
  expect(closed).toBe(false);
  socket.close();
});
