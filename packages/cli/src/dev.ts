/**
 * `flotilla dev`: a local cluster in one command. Starts N `flotilla server` processes on
 * consecutive ports with data under `./.flotilla/`, writes their logs to `./.flotilla/<id>.log`,
 * prints the URLs, and on Ctrl-C (or SIGTERM) stops them gracefully.
 *
 * The nodes run in their own process group, so a Ctrl-C in the terminal reaches only this
 * supervisor, which sends each node exactly one SIGTERM (a node takes a second signal as "exit
 * now"). A second Ctrl-C kills the nodes at once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DevOptions {
  nodes: number;
  basePort: number;
  host: string;
  dataDir: string;
  /** Extra arguments passed to every server. */
  serverArgs: string[];
  out: (line: string) => void;
  /** Calls `handler` on each stop signal until the returned function is called (default: process signals). */
  onStopSignal?: (handler: () => void) => () => void;
  /** Script run as each node with `server ...` arguments (default: this CLI's main.js; tests use a stand-in). */
  serverMain?: string;
}

const CLI_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** A node that has not stopped this long after SIGTERM is killed; nothing acknowledged is lost either way. */
const STOP_GRACE_MS = 10_000;

/** The cluster secret is generated once per data directory and reused, so restarts rejoin. */
function clusterSecret(dataDir: string): string {
  const file = join(dataDir, 'cluster-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(24).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

function processSignals(handler: () => void): () => void {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}

/** Checks the options; returns a problem to report, or null. */
export function checkDevOptions(options: Pick<DevOptions, 'nodes' | 'basePort'>): string | null {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 9) {
    return `--nodes: expected 1 to 9, got ${options.nodes}`;
  }
  const lastPort = options.basePort + options.nodes - 1;
  if (!Number.isInteger(options.basePort) || options.basePort < 1 || lastPort > 65535) {
    return `--base-port: ports ${options.basePort}..${lastPort} are not all valid`;
  }
  return null;
}

function serverArgs(
  options: DevOptions,
  id: string,
  port: number,
  peers: string,
  secret: string,
  dataDir: string,
) {
  return [
    options.serverMain ?? CLI_MAIN,
    'server',
    '--node-id',
    id,
    '--data-dir',
    join(dataDir, id),
    '--listen',
    `${options.host}:${port}`,
    '--peers',
    peers,
    '--cluster-secret',
    secret,
    ...options.serverArgs,
  ];
}

function printUrls(options: DevOptions, ids: string[], dataDir: string): void {
  const port = (i: number) => options.basePort + i;
  options.out(`Flotilla dev cluster: ${ids.length} nodes, data in ${dataDir}`);
  for (const [i, id] of ids.entries()) {
    options.out(
      `  ${id}  ws://${options.host}:${port(i)}/client   http://${options.host}:${port(i)}/   log ${id}.log`,
    );
  }
  options.out(`Dashboard: http://${options.host}:${port(0)}/`);
  options.out(
    `Clients:   connect({ servers: [${ids.map((_, i) => `'ws://${options.host}:${port(i)}'`).join(', ')}] })`,
  );
  options.out('Press Ctrl-C to stop.');
}

/** Runs the cluster until a stop signal (exit code 0) or until every node has exited by itself (1). */
export async function runDevCluster(options: DevOptions): Promise<number> {
  const problem = checkDevOptions(options);
  if (problem !== null) throw new Error(problem);
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const secret = clusterSecret(dataDir);
  const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
  const peers = ids.map((id, i) => `${id}=${options.host}:${options.basePort + i}`).join(',');
  const children = new Map<string, ChildProcess>();
  const state = { stopping: false, killed: false };
  let finished!: () => void;
  const done = new Promise<void>((r) => {
    finished = r;
  });
  // Safety net: nodes never outlive this process, whatever ends it.
  const killAll = () => {
    for (const child of children.values()) child.kill('SIGKILL');
  };
  process.once('exit', killAll);

  for (const [i, id] of ids.entries()) {
    const log = openSync(join(dataDir, `${id}.log`), 'a');
    const args = serverArgs(options, id, options.basePort + i, peers, secret, dataDir);
    const child = spawn(process.execPath, args, { stdio: ['ignore', log, log], detached: true });
    closeSync(log);
    children.set(id, child);
    const gone = (why: string) => {
      if (children.get(id) !== child) return;
      children.delete(id);
      if (!state.stopping) options.out(`node ${id} ${why}; see ${join(dataDir, `${id}.log`)}`);
      if (children.size === 0) finished();
    };
    child.on('exit', (code, signal) => gone(`exited (${signal ?? `code ${code}`})`));
    child.on('error', (error) => gone(`could not run: ${error.message}`));
  }
  printUrls(options, ids, dataDir);

  const stop = () => {
    if (state.stopping) {
      if (!state.killed) options.out('killing the nodes');
      state.killed = true;
      killAll();
      return;
    }
    state.stopping = true;
    options.out('stopping...');
    for (const child of children.values()) child.kill('SIGTERM');
    setTimeout(killAll, STOP_GRACE_MS).unref();
  };
  const removeSignals = (options.onStopSignal ?? processSignals)(stop);
  await done;
  removeSignals();
  process.off('exit', killAll);
  return state.stopping ? 0 : 1;
}
