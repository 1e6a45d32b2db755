/**
 * The Node transport: `ws` with per-message compression off (bodies are usually incompressible
 * and deflate costs CPU) and binary frames delivered as Buffers (no copy into an ArrayBuffer).
 * `ws` picks up the native `bufferutil` for masking by itself. There is no WebSocket-level ping
 * here: the connection checks the node's liveness with protocol requests, which works the same in
 * browsers (they have no ping API) and notices a node whose process is paused as well as a
 * half-open TCP connection. Loaded only by a runtime dynamic import from transport.ts, never from
 * the browser path.
 */

import WebSocket from 'ws';
import type { WebSocketFactory, WebSocketLike } from './transport.js';

/**
 * Largest frame accepted from a server, in bytes: above the protocol's 4 MiB frame limit with room
 * for a server configured looser; a runaway peer cannot make us buffer more than this.
 */
const MAX_INCOMING_FRAME_BYTES = 64 * 1024 * 1024;

/** A factory creating `ws` sockets that behave like browser WebSockets. */
export function createNodeWebSocketFactory(): WebSocketFactory {
  return (url) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_INCOMING_FRAME_BYTES });
    ws.binaryType = 'nodebuffer';
    return ws as unknown as WebSocketLike;
  };
}
