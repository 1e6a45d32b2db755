/**
 * Everything a command touches outside itself: output streams, stdin, environment, signals, the
 * SDK's `connect`, the broker package and the dev-cluster runner. `main.ts` passes the real ones;
 * tests pass fakes and read what was written, so commands run in-process with no globals.
 */

import { type ConnectOptions, connect, type FlotillaClient } from '@flotilla/client';
import { type DevOptions, runDevCluster } from './dev.js';
import { loadServerApi, type ServerApi } from './server-api.js';

/** A place text goes: stdout or stderr. */
export interface Output {
  write(text: string): void;
  /** True when a person is watching (progress bars, colours); false for pipes and files. */
  readonly isTTY: boolean;
}

export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

export interface CliContext {
  stdout: Output;
  stderr: Output;
  /** The stream progress bars draw on (stderr on a terminal), or null for none. */
  progressStream: NodeJS.WritableStream | null;
  env: Record<string, string | undefined>;
  /** Reads all of stdin (for `publish QUEUE -`). */
  readStdin(): Promise<Uint8Array>;
  connect(options: ConnectOptions): Promise<FlotillaClient>;
  /** Loads `@flotilla/node` (only `flotilla server` needs it; other commands start faster without). */
  loadServerApi(): Promise<ServerApi>;
  runDevCluster(options: DevOptions): Promise<number>;
  /** Calls `handler` on SIGINT, SIGTERM and SIGHUP until the returned function is called. */
  onStopSignal(handler: (signal: StopSignal) => void): () => void;
  /** Ends the process now (a second Ctrl-C during a graceful stop). */
  forceExit(code: number): void;
  fetch: typeof fetch;
}

const STOP_SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function processOutput(stream: NodeJS.WriteStream): Output {
  return {
    write: (text) => {
      stream.write(text);
    },
    get isTTY() {
      return stream.isTTY === true;
    },
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** The real process: its streams, environment and signals. */
export function processContext(): CliContext {
  return {
    stdout: processOutput(process.stdout),
    stderr: processOutput(process.stderr),
    progressStream: process.stderr.isTTY ? process.stderr : null,
    env: process.env,
    readStdin: () => readAll(process.stdin),
    connect,
    loadServerApi,
    runDevCluster,
    onStopSignal(handler) {
      for (const signal of STOP_SIGNALS) process.on(signal, handler);
      return () => {
        for (const signal of STOP_SIGNALS) process.off(signal, handler);
      };
    },
    forceExit: (code) => process.exit(code),
    fetch: globalThis.fetch,
  };
}
