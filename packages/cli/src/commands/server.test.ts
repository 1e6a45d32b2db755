/**
 * Proves `flotilla server` around the broker's real configuration loader (SETTINGS,
 * loadServerConfig, ConfigError) with a stand-in for `startServer`: every setting is a flag
 * listed in --help with its environment variable, flags reach the loader (and win over the
 * environment and the config file), a bad configuration exits 2 without starting, a stop signal
 * stops gracefully (exit 0), a second signal forces exit 1, and a server that dies exits 1.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as config from '../../../node/src/config/config.js';
import type { RunningServer } from '../../../node/src/server/types.js';
import type { RunningServerHandle, ServerApi } from '../server-api.js';
import { type RunResult, runIn, type TestContext, testContext } from '../testing/context.js';
import { rawSettingsFromFlags, settingOption } from './server.js';

type ServerConfig = config.ServerConfig;

/** Compile-time check: the broker's RunningServer is what the command expects of a started server. */
export const runningServerFits: (server: RunningServer) => RunningServerHandle = (server) => server;

/** A started server the test controls: `stop` resolves `closed`; `die` ends it with an error. */
class FakeServer implements RunningServerHandle {
  readonly httpUrl = 'http://127.0.0.1:0';
  readonly stops: (string | undefined)[] = [];
  stopFailure: Error | null = null;
  private finish!: () => void;
  private fail!: (error: Error) => void;
  readonly closed = new Promise<void>((resolve, reject) => {
    this.finish = resolve;
    this.fail = reject;
  });

  async stop(reason?: string): Promise<void> {
    this.stops.push(reason);
    if (this.stopFailure !== null) throw this.stopFailure;
    this.finish();
  }

  die(error: Error): void {
    this.fail(error);
  }

  exitQuietly(): void {
    this.finish();
  }
}

interface Harness {
  ctx: TestContext;
  started: ServerConfig[];
  server: FakeServer;
}

function harness(env: Record<string, string> = {}, startFailure?: Error): Harness {
  const started: ServerConfig[] = [];
  const server = new FakeServer();
  const api: ServerApi = {
    SETTINGS: config.SETTINGS,
    envName: config.envName,
    ConfigError: config.ConfigError,
    loadServerConfig: (flags, environment) => config.loadServerConfig(flags, environment),
    startServer: async (loaded) => {
      if (startFailure !== undefined) throw startFailure;
      started.push(loaded as ServerConfig);
      return server;
    },
  };
  return { ctx: testContext({ env, serverApi: api }), started, server };
}

/**
 * Runs `server` until it has started (its signal handler is in place), for tests that then send
 * signals; the run's outcome is in `result`.
 */
async function startServer(h: Harness, argv: string[]): Promise<{ result: Promise<RunResult> }> {
  const result = runIn(h.ctx, ['server', ...argv]);
  for (const deadline = Date.now() + 5000; h.ctx.signalListeners === 0; ) {
    if (Date.now() > deadline) throw new Error(`server did not start: ${h.ctx.stderr.text}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return { result };
}

const BASE_FLAGS = [
  '--node-id',
  'n1',
  '--listen',
  '127.0.0.1:7501',
  '--data-dir',
  '/tmp/flotilla-cli-test-n1',
];

describe('server flags', () => {
  it('makes every setting a flag, --join a switch, each with its environment variable', () => {
    expect(
      settingOption({ key: 'nodeId', flag: 'node-id', help: 'the id' }, config.envName as never),
    ).toEqual(['--node-id <value>', 'the id [env FLOTILLA_NODE_ID]']);
    expect(settingOption({ key: 'join', flag: 'join', help: 'join' }, config.envName as never)[0]).toBe(
      '--join',
    );
  });

  it('passes on only the flags given, by setting key, plus --config', () => {
    expect(
      rawSettingsFromFlags(config.SETTINGS, { nodeId: 'n1', join: true, config: 'c.json', other: 1 }),
    ).toEqual({
      nodeId: 'n1',
      join: true,
      config: 'c.json',
    });
  });

  it('lists every setting in --help', async () => {
    const h = harness();
    const help = await runIn(h.ctx, ['server', '--help']);
    expect(help.code).toBe(0);
    for (const setting of config.SETTINGS) {
      expect(help.stdout).toContain(`--${setting.flag}`);
      expect(help.stdout).toContain(config.envName(setting.key));
    }
    expect(help.stdout).toContain('--config <file>');
    expect(help.stdout).toContain('Exit codes');
  });
});

describe('flotilla server', () => {
  it('hands the flags to the loader, starts, and stops gracefully on SIGTERM with exit 0', async () => {
    const h = harness();
    const { result } = await startServer(h, [
      ...BASE_FLAGS,
      '--peers',
      'n1=127.0.0.1:7501,n2=127.0.0.1:7502',
      '--cluster-secret',
      'a-long-secret',
      '--tick-ms',
      '10',
      '--heartbeat-ms',
      '20',
      '--election-timeout-ms',
      '300',
    ]);
    const [loaded] = h.started;
    expect(loaded).toMatchObject({ nodeId: 'n1', tickMs: 10, heartbeatMs: 20, electionTimeoutMs: 300 });
    expect(loaded!.listen).toEqual({ host: '127.0.0.1', port: 7501 });
    expect([...loaded!.peers.keys()]).toEqual(['n1', 'n2']);
    h.ctx.signal('SIGTERM');
    expect((await result).code).toBe(0);
    expect(h.server.stops).toEqual(['SIGTERM']);
    expect(h.ctx.signalListeners).toBe(0);
  });

  it('takes settings from the environment and a config file, flags winning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-'));
    const file = join(dir, 'node.json');
    writeFileSync(file, JSON.stringify({ nodeId: 'from-file', logLevel: 'warn', maxSessions: 5 }));
    const h = harness({ FLOTILLA_LOG_LEVEL: 'debug', FLOTILLA_MAX_SESSIONS: '7' });
    const { result } = await startServer(h, [
      '--config',
      file,
      '--max-sessions',
      '9',
      '--listen',
      '127.0.0.1:7501',
    ]);
    expect(h.started[0]).toMatchObject({ nodeId: 'from-file', logLevel: 'debug', maxSessions: 9 });
    h.ctx.signal('SIGINT');
    expect((await result).code).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 2 with the loader message on a bad configuration, starting nothing', async () => {
    for (const argv of [
      ['--listen', '127.0.0.1:7501'], // no node id
      [...BASE_FLAGS, '--tick-ms', 'fast'],
      [...BASE_FLAGS, '--peers', 'n1=127.0.0.1:7501,n2=127.0.0.1:7502'], // no cluster secret
      ['--config', '/nonexistent/flotilla.json'],
    ]) {
      const h = harness();
      const result = await runIn(h.ctx, ['server', ...argv]);
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.stderr, argv.join(' ')).toMatch(/^flotilla server: .+/);
      expect(h.started).toEqual([]);
    }
  });

  it('exits 2 for a flag that is not a setting', async () => {
    const result = await runIn(harness().ctx, ['server', '--no-such-setting', 'x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown option');
  });

  it('a second signal during the graceful stop forces exit 1', async () => {
    const h = harness();
    h.server.stop = async (reason) => {
      h.server.stops.push(reason);
      await new Promise(() => {}); // a shutdown that hangs
    };
    await startServer(h, BASE_FLAGS);
    h.ctx.signal('SIGTERM');
    h.ctx.signal('SIGINT');
    expect(h.ctx.forcedExits).toEqual([1]);
    expect(h.ctx.stderr.text).toContain('SIGINT again');
  });

  it('exits 1 when the server dies, when it stops by itself, when stop fails, and when it cannot start', async () => {
    const died = harness();
    const dying = await startServer(died, BASE_FLAGS);
    died.server.die(new Error('disk full'));
    expect(await dying.result).toMatchObject({ code: 1, stderr: expect.stringContaining('died: disk full') });

    const quit = harness();
    const quitting = await startServer(quit, BASE_FLAGS);
    quit.server.exitQuietly();
    expect(await quitting.result).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('stopped unexpectedly'),
    });

    const stuck = harness();
    stuck.server.stopFailure = new Error('transfer refused');
    const stopping = await startServer(stuck, BASE_FLAGS);
    stuck.ctx.signal('SIGTERM');
    expect(await stopping.result).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('transfer refused'),
    });

    const broken = harness({}, new Error('EADDRINUSE'));
    const result = await runIn(broken.ctx, ['server', ...BASE_FLAGS]);
    expect(result).toMatchObject({ code: 1, stderr: expect.stringContaining('could not start: EADDRINUSE') });
  });
});
