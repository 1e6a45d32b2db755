/**
 * `flotilla dev`: a local cluster in one command. Starts N `flotilla server` processes on
 * consecutive ports with data under `./.flotilla/`, writes their logs to `./.flotilla/<id>.log`,
 * prints the URLs, and on Ctrl-C (or SIGTERM) stops them gracefully.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
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
}

const CLI_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** The cluster secret is generated once per data directory and reused, so restarts rejoin. */
function clusterSecret(dataDir: string): string {
  const file = join(dataDir, 'cluster-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(24).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

export async function runDevCluster(options: DevOptions): Promise<number> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const secret = clusterSecret(dataDir);
  const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
  const port = (i: number) => options.basePort + i;
  const peers = ids.map((id, i) => `${id}=${options.host}:${port(i)}`).join(',');
  const children = new Map<string, ChildProcess>();

  for (const [i, id] of ids.entries()) {
    const log = openSync(join(dataDir, `${id}.log`), 'a');
    const args = [
      CLI_MAIN,
      'server',
      '--node-id',
      id,
      '--data-dir',
      join(dataDir, id),
      '--listen',
      `${options.host}:${port(i)}`,
      '--peers',
      peers,
      '--cluster-secret',
      secret,
      ...options.serverArgs,
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', log, log] });
    children.set(id, child);
    child.on('exit', (code, signal) => {
      children.delete(id);
      if (!stopping)
        options.out(`node ${id} exited (${signal ?? `code ${code}`}); see ${join(dataDir, `${id}.log`)}`);
      if (children.size === 0) finished?.();
    });
  }

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

  let stopping = false;
  let finished: (() => void) | undefined;
  const done = new Promise<void>((r) => {
    finished = r;
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    options.out('stopping...');
    for (const child of children.values()) child.kill('SIGTERM');
    // A node that does not stop in time is killed; nothing acknowledged is lost either way.
    setTimeout(() => {
      for (const child of children.values()) child.kill('SIGKILL');
    }, 10_000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await done;
  return stopping ? 0 : 1;
}
