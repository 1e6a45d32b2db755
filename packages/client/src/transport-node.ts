/**
 * The Node transport: `ws` with per-message compression off (bodies are usually incompressible
 * and deflate costs CPU) and binary frames delivered as Buffers (no copy into an ArrayBuffer).
 * `ws` picks up the native `bufferutil` for masking by itself. A heartbeat pings the server and
 * drops a connection that stops answering, so a half-open TCP connection (a peer that vanished
 * without a FIN) is noticed and replaced instead of swallowing requests until their deadlines.
 * Loaded only by a runtime dynamic import from transport.ts, never from the browser path.
 */

import WebSocket from 'ws';
import type { WebSocketFactory, WebSocketLike } from './transport.js';

/**
 * Largest frame accepted from a server, in bytes: above the protocol's 4 MiB frame limit with room
 * for a server configured looser; a runaway peer cannot make us buffer more than this.
 */
const MAX_INCOMING_FRAME_BYTES = 64 * 1024 * 1024;

/** Options of the Node transport. */
export interface NodeTransportOptions {
  /** Ping the server this often; drop the connection when a whole interval passes with no pong or frame. */
  heartbeatIntervalMs: number;
}

/** Pings every interval; a connection silent for a whole interval since the last ping is terminated. */
function keepAlive(ws: WebSocket, intervalMs: number): void {
  let heard = true;
  const hear = () => {
    heard = true;
  };
  ws.on('pong', hear);
  ws.on('message', hear);
  const timer = setInterval(() => {
    if (!heard) {
      ws.terminate();
      return;
    }
    heard = false;
    ws.ping();
  }, intervalMs);
  // The socket keeps the process alive while it is open; the heartbeat alone must not.
  timer.unref();
  ws.on('close', () => clearInterval(timer));
}

/** A factory creating `ws` sockets that behave like browser WebSockets. */
export function createNodeWebSocketFactory(options: NodeTransportOptions): WebSocketFactory {
  return (url) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_INCOMING_FRAME_BYTES });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => keepAlive(ws, options.heartbeatIntervalMs));
    return ws as unknown as WebSocketLike;
  };
}
