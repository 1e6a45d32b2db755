/**
 * A CliContext for tests: output captured as text, stdin given as a value, signals sent by the
 * test, a real `connect` with fast reconnects, and stand-ins for the broker package and the dev
 * cluster. `run(argv)` runs the command line in-process and returns the exit code and output.
 */

import { connect, type FlotillaClient } from '@flotilla/client';
import type { CliContext, Output, StopSignal } from '../context.js';
import { runCli } from '../program.js';
import type { ServerApi } from '../server-api.js';

export interface CapturedOutput extends Output {
  readonly text: string;
}

export function captureOutput(isTTY = false): CapturedOutput {
  let text = '';
  return {
    isTTY,
    write: (chunk) => {
      text += chunk;
    },
    get text() {
      return text;
    },
  };
}

export interface TestContext extends CliContext {
  stdout: CapturedOutput;
  stderr: CapturedOutput;
  /** Sends a stop signal to whoever listens (as the OS would). */
  signal(signal: StopSignal): void;
  /** Stop-signal listeners currently registered. */
  readonly signalListeners: number;
  /** Exit codes passed to `forceExit`. */
  readonly forcedExits: number[];
  /** Clients opened through `connect`, closed (without draining) by `closeClients`. */
  closeClients(): Promise<void>;
}

export interface TestContextOptions {
  env?: Record<string, string | undefined>;
  stdin?: Uint8Array | string;
  serverApi?: ServerApi;
  fetch?: typeof fetch;
  runDevCluster?: CliContext['runDevCluster'];
}

/** Reconnect quickly: tests that lose a node should not wait for production backoff. */
const FAST_RECONNECT = { initialMs: 5, maxMs: 40 } as const;

export function testContext(options: TestContextOptions = {}): TestContext {
  const listeners = new Set<(signal: StopSignal) => void>();
  const clients: FlotillaClient[] = [];
  const forcedExits: number[] = [];
  const stdin = options.stdin ?? new Uint8Array();
  return {
    stdout: captureOutput(),
    stderr: captureOutput(),
    progressStream: null,
    env: options.env ?? {},
    readStdin: async () => (typeof stdin === 'string' ? new TextEncoder().encode(stdin) : stdin),
    connect: async (connectOptions) => {
      const client = await connect({ reconnectDelayMs: FAST_RECONNECT, ...connectOptions });
      clients.push(client);
      return client;
    },
    loadServerApi: async () => {
      if (options.serverApi === undefined) throw new Error('no server api in this test');
      return options.serverApi;
    },
    runDevCluster:
      options.runDevCluster ??
      (async () => {
        throw new Error('no dev cluster in this test');
      }),
    onStopSignal(handler) {
      listeners.add(handler);
      return () => listeners.delete(handler);
    },
    forceExit: (code) => {
      forcedExits.push(code);
    },
    fetch: options.fetch ?? globalThis.fetch,
    signal(signal) {
      for (const listener of [...listeners]) listener(signal);
    },
    get signalListeners() {
      return listeners.size;
    },
    forcedExits,
    async closeClients() {
      await Promise.all(clients.splice(0).map((client) => client.close({ drain: false })));
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` in a fresh test context (or the one given) and returns what it printed. */
export async function runIn(ctx: TestContext, argv: readonly string[]): Promise<RunResult> {
  const before = { out: ctx.stdout.text.length, err: ctx.stderr.text.length };
  const code = await runCli(argv, ctx);
  return { code, stdout: ctx.stdout.text.slice(before.out), stderr: ctx.stderr.text.slice(before.err) };
}
