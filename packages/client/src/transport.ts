/**
 * The WebSocket under a connection, behind a tiny interface so the SDK runs in browsers and Node.
 * Browsers (and any runtime without Node) use the global `WebSocket`. Node uses the `ws` package
 * through `transport-node.ts`, loaded at runtime by a dynamic import that bundlers cannot follow,
 * so a browser bundle never contains `ws` or `node:` imports. Node gets `ws` even where a global
 * WebSocket exists because `ws` masks with the native `bufferutil` and lets us cap frame sizes.
 */

import { FlotillaError } from '@flotilla/shared';

/** The subset of the W3C WebSocket API the SDK uses (`ws` implements it as well). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** Creates a WebSocket for a URL (e.g. `(url) => new WebSocket(url)`); see the `webSocket` client option. */
export type WebSocketFactory = (url: string) => WebSocketLike;

/** What a transport reports back to its connection. */
export interface SocketHandlers {
  /** One binary frame. */
  onFrame(frame: Uint8Array): void;
  /** The socket closed (either side), or failed; called once. */
  onClose(code: number, reason: string): void;
}

/** An open socket. */
export interface Socket {
  send(frame: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

const OPEN = 1;
/** WebSocket close code for a protocol violation (here: a text frame). */
const CLOSE_PROTOCOL_ERROR = 1002;

/** The frame bytes of a message event, or null for a text frame (a protocol error). */
function frameBytes(data: unknown): Uint8Array | null {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return null;
}

/**
 * Opens a socket with `create` and resolves once it is open; rejects with CONNECTION_LOST if it
 * closes or fails first. After opening, every event goes to `handlers`.
 */
export function openWebSocket(
  create: WebSocketFactory,
  url: string,
  handlers: SocketHandlers,
): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    let ws: WebSocketLike;
    try {
      ws = create(url);
    } catch (cause) {
      reject(
        new FlotillaError('CONNECTION_LOST', `cannot open ${url}: ${String(cause)}`, { url }, { cause }),
      );
      return;
    }
    if (ws.binaryType !== 'nodebuffer') ws.binaryType = 'arraybuffer';
    let opened = false;
    let closed = false;
    const socket: Socket = {
      send: (frame) => {
        if (ws.readyState === OPEN) ws.send(frame);
      },
      close: (code, reason) => ws.close(code, reason),
    };
    ws.onopen = () => {
      opened = true;
      resolve(socket);
    };
    ws.onmessage = (event) => {
      const frame = frameBytes(event.data);
      if (frame === null) ws.close(CLOSE_PROTOCOL_ERROR, 'text frames are not part of the protocol');
      else handlers.onFrame(frame);
    };
    // Browsers fire error then close; `ws` may fire only error when the handshake fails.
    const finish = (code: number, reason: string) => {
      if (closed) return;
      closed = true;
      if (!opened) {
        reject(new FlotillaError('CONNECTION_LOST', `cannot connect to ${url} (${code} ${reason})`, { url }));
        return;
      }
      handlers.onClose(code, reason);
    };
    ws.onerror = (event) => {
      const message = (event as { message?: unknown } | null)?.message;
      finish(1006, typeof message === 'string' ? message : 'socket error');
      try {
        ws.close();
      } catch {
        // Already closing: nothing to do.
      }
    };
    ws.onclose = (event) => finish(event.code, event.reason);
  });
}

/** True when running under Node (where `ws` is preferred over a global WebSocket). */
function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

// A variable specifier keeps bundlers from following this import into `ws` and `node:` modules.
const NODE_TRANSPORT_MODULE = './transport-node.js';

/** What transport-node.ts exports (typed here without importing it). */
interface NodeTransportModule {
  createNodeWebSocketFactory(): WebSocketFactory;
}

let nodeTransport: Promise<NodeTransportModule | null> | undefined;

async function loadNodeTransport(): Promise<NodeTransportModule | null> {
  try {
    return (await import(/* @vite-ignore */ NODE_TRANSPORT_MODULE)) as NodeTransportModule;
  } catch {
    return null;
  }
}

/**
 * The factory to use when the user gave none: `ws` under Node (when it loads), else the global
 * WebSocket. Fails with UNAVAILABLE when neither exists. (Liveness is checked by the connection
 * with protocol requests, the same on every runtime.)
 */
export async function defaultWebSocketFactory(): Promise<WebSocketFactory> {
  if (isNode()) {
    nodeTransport ??= loadNodeTransport();
    const transport = await nodeTransport;
    if (transport !== null) return transport.createNodeWebSocketFactory();
  }
  const Global = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (typeof Global === 'function') return (url) => new Global(url);
  throw new FlotillaError(
    'UNAVAILABLE',
    'no WebSocket implementation: install "ws" or pass the webSocket option to connect()',
  );
}
