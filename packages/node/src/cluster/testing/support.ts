/**
 * Small helpers for the cluster tests: waiting for a condition with a deadline, a pino logger
 * whose lines can be searched, and an HTTP server on a free loopback port that routes `/cluster`
 * upgrades the way the node's real server does.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../runtime/logger.js';

/** Polls `condition` every few ms until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface CapturedLog {
  logger: Logger;
  /** Every line logged so far, parsed. */
  readonly lines: Record<string, unknown>[];
  /** Lines whose `msg` contains `text`. */
  find(text: string): Record<string, unknown>[];
}

export function captureLogger(level = 'debug', base: Record<string, unknown> = {}): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const stream = {
    write(line: string) {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
  const logger = pino({ level, base }, stream);
  return {
    logger,
    lines,
    find: (text) => lines.filter((line) => typeof line.msg === 'string' && line.msg.includes(text)),
  };
}

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface TestServer {
  server: Server;
  port: number;
  address: string;
  /** Stops listening and destroys every connection, upgraded ones included. */
  close(): Promise<void>;
  /** Stops reading from every current connection, like a stopped (SIGSTOP) process; `resume` undoes it. */
  pause(): void;
  resume(): void;
}

/** An HTTP server on 127.0.0.1 routing `/cluster` upgrades to `handler` (port 0: a free one). */
export async function listenForPeers(handler: UpgradeHandler, port = 0): Promise<TestServer> {
  const server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  // Upgraded sockets still belong to the server: closing it ends them all (as a dying process would).
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/cluster') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    handler(req, socket, head);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    server,
    port: bound,
    address: `127.0.0.1:${bound}`,
    pause: () => {
      for (const socket of sockets) socket.pause();
    },
    resume: () => {
      for (const socket of sockets) socket.resume();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
