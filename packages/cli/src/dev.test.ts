/**
 * Proves the dev cluster supervisor with a stand-in for `flotilla server` (a tiny script that
 * records its arguments): N nodes on consecutive ports share one peer list and one cluster secret
 * kept in the data directory, extra flags reach every node, a stop signal sends each node SIGTERM
 * and ends with 0, a second one kills stragglers, and nodes that all exit by themselves end with 1.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { devOptionsFromFlags } from './commands/dev.js';
import { type DevOptions, runDevCluster } from './dev.js';
import { UsageError } from './exit-codes.js';

/** Records argv to <data-dir>.args.json; on SIGTERM writes <data-dir>.stopped and exits (unless told to ignore it). */
const STAND_IN = `
import { renameSync, writeFileSync } from 'node:fs';
const args = process.argv.slice(2);
const dataDir = args[args.indexOf('--data-dir') + 1];
// Written whole then renamed: the test polls for the file and must never read half of it.
writeFileSync(dataDir + '.args.json.tmp', JSON.stringify(args));
renameSync(dataDir + '.args.json.tmp', dataDir + '.args.json');
if (args.includes('--exit-now')) process.exit(3);
process.on('SIGTERM', () => {
  writeFileSync(dataDir + '.stopped', 'SIGTERM');
  if (!args.includes('--ignore-term')) process.exit(0);
});
setInterval(() => {}, 1000);
`;

async function waitFor(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !probe(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setup(serverArgs: string[] = [], nodes = 3) {
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-dev-'));
  tempDirs.push(dataDir);
  const serverMain = join(dataDir, 'stand-in.mjs');
  writeFileSync(serverMain, STAND_IN);
  const lines: string[] = [];
  let stop: (() => void) | undefined;
  const options: DevOptions = {
    nodes,
    basePort: 17401,
    host: '127.0.0.1',
    dataDir,
    serverArgs,
    out: (line) => lines.push(line),
    onStopSignal: (handler) => {
      stop = handler;
      return () => {
        stop = undefined;
      };
    },
    serverMain,
  };
  const ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
  const argsOf = (id: string) =>
    JSON.parse(readFileSync(join(dataDir, `${id}.args.json`), 'utf8')) as string[];
  const allStarted = () =>
    waitFor('every node to start', () => ids.every((id) => existsSync(join(dataDir, `${id}.args.json`))));
  return { options, lines, ids, argsOf, allStarted, dataDir, stop: () => stop?.() };
}

describe('devOptionsFromFlags', () => {
  it('fills the defaults that match the client commands defaults', () => {
    expect(devOptionsFromFlags({}, [])).toEqual({
      nodes: 3,
      basePort: 7401,
      host: '127.0.0.1',
      dataDir: '.flotilla',
      serverArgs: [],
    });
    expect(devOptionsFromFlags({ nodes: '5', basePort: '8001' }, ['--log-level', 'debug'])).toMatchObject({
      nodes: 5,
      basePort: 8001,
      serverArgs: ['--log-level', 'debug'],
    });
  });

  it('refuses node counts and ports that do not fit', () => {
    expect(() => devOptionsFromFlags({ nodes: '0' }, [])).toThrow(UsageError);
    expect(() => devOptionsFromFlags({ nodes: '10' }, [])).toThrow(UsageError);
    expect(() => devOptionsFromFlags({ basePort: '65535' }, [])).toThrow(/65535\.\.65537/);
  });
});

describe('runDevCluster', () => {
  it('starts the nodes with one peer list and secret, and stops them with one SIGTERM each', async () => {
    const dev = setup(['--log-level', 'debug']);
    const running = runDevCluster(dev.options);
    await dev.allStarted();
    const secret = readFileSync(join(dev.dataDir, 'cluster-secret'), 'utf8').trim();
    const peers = 'n1=127.0.0.1:17401,n2=127.0.0.1:17402,n3=127.0.0.1:17403';
    for (const [i, id] of dev.ids.entries()) {
      expect(dev.argsOf(id)).toEqual([
        'server',
        '--node-id',
        id,
        '--data-dir',
        join(dev.dataDir, id),
        '--listen',
        `127.0.0.1:${17401 + i}`,
        '--peers',
        peers,
        '--cluster-secret',
        secret,
        '--log-level',
        'debug',
      ]);
    }
    expect(dev.lines).toContain('  n2  ws://127.0.0.1:17402/client   http://127.0.0.1:17402/   log n2.log');
    dev.stop();
    expect(await running).toBe(0);
    for (const id of dev.ids)
      expect(readFileSync(join(dev.dataDir, `${id}.stopped`), 'utf8')).toBe('SIGTERM');
  });

  it('reuses the cluster secret of the data directory', async () => {
    const dev = setup([], 1);
    writeFileSync(join(dev.dataDir, 'cluster-secret'), 'kept-secret\n');
    const running = runDevCluster(dev.options);
    await dev.allStarted();
    expect(dev.argsOf('n1')).toContain('kept-secret');
    dev.stop();
    expect(await running).toBe(0);
  });

  it('kills nodes that ignore SIGTERM on a second stop signal', async () => {
    const dev = setup(['--ignore-term'], 2);
    const running = runDevCluster(dev.options);
    await dev.allStarted();
    dev.stop();
    await waitFor('SIGTERM to arrive', () =>
      dev.ids.every((id) => existsSync(join(dev.dataDir, `${id}.stopped`))),
    );
    dev.stop();
    expect(await running).toBe(0);
    expect(dev.lines).toContain('killing the nodes');
  });

  it('ends with 1 and says so when every node exits by itself', async () => {
    const dev = setup(['--exit-now'], 2);
    expect(await runDevCluster(dev.options)).toBe(1);
    expect(dev.lines.filter((line) => line.includes('exited (code 3)'))).toHaveLength(2);
  });
});
