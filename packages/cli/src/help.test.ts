/**
 * Proves every command documents itself: `--help` on each command (and subcommand) exits 0 and
 * mentions each of its options, examples and the exit codes. Also runs the built executable
 * (packages/cli/dist/main.js, from `npx tsc -b`) to check the shebang entry point, --version and
 * that its exit codes reach the shell.
 */

import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import * as config from '../../node/src/config/config.js';
import { buildProgram, CLI_VERSION } from './program.js';
import type { ServerApi } from './server-api.js';
import { runIn, testContext } from './testing/context.js';

const serverApi: ServerApi = {
  SETTINGS: config.SETTINGS,
  envName: config.envName,
  ConfigError: config.ConfigError,
  loadServerConfig: (flags, env) => config.loadServerConfig(flags, env),
  startServer: async () => {
    throw new Error('not in this test');
  },
};

/** Every command path with its options, depth first: [['server'], ['queue'], ['queue', 'create'], ...]. */
function commandPaths(command: Command, prefix: string[] = []): Array<{ path: string[]; command: Command }> {
  return command.commands.flatMap((sub) => {
    const path = [...prefix, sub.name()];
    return [{ path, command: sub }, ...commandPaths(sub, path)];
  });
}

describe('--help', () => {
  const program = buildProgram(testContext(), () => {});
  const paths = commandPaths(program);

  it('covers every command of the contract', () => {
    expect(paths.map((p) => p.path.join(' '))).toEqual([
      'server',
      'dev',
      'status',
      'queue',
      'queue create',
      'queue list',
      'queue stats',
      'queue update',
      'queue delete',
      'queue purge',
      'queue peek',
      'queue redrive',
      'publish',
      'consume',
      'bench',
    ]);
  });

  it.each(paths.map((p) => [p.path.join(' '), p] as const))(
    '%s --help lists its options',
    async (_, { path, command }) => {
      const ctx = testContext({ serverApi });
      const result = await runIn(ctx, [...path, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Usage: flotilla ${path.join(' ')}`);
      for (const option of command.options) expect(result.stdout).toContain(option.long!);
      expect(result.stdout).toContain('Exit codes');
      expect(result.stdout).toContain('Examples:');
      expect(result.stderr).toBe('');
    },
  );

  it('client commands document --servers, --token and --json where they print data', async () => {
    for (const path of [
      ['status'],
      ['queue', 'list'],
      ['queue', 'stats'],
      ['publish'],
      ['consume'],
      ['bench'],
    ]) {
      const result = await runIn(testContext(), [...path, '--help']);
      for (const flag of ['--servers', '--token', '--json'])
        expect(result.stdout, `${path} ${flag}`).toContain(flag);
    }
  });

  it('the root help lists the commands and the exit codes; no command is a usage error', async () => {
    const root = await runIn(testContext(), ['--help']);
    expect(root.code).toBe(0);
    for (const name of ['server', 'dev', 'status', 'queue', 'publish', 'consume', 'bench']) {
      expect(root.stdout).toContain(name);
    }
    expect(root.stdout).toMatch(/4 {2}not found \(QUEUE_NOT_FOUND\)/);
    const bare = await runIn(testContext(), []);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: flotilla');
  });
});

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
/** What npm links as `flotilla` (committed, so that the link exists before the first build). */
const BIN = fileURLToPath(new URL('../bin/flotilla.js', import.meta.url));

function runBuilt(args: string[], entry = MAIN): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [entry, ...args],
      { env: { ...process.env, FLOTILLA_SERVERS: '' } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('the built executable', () => {
  it('prints its version and exits 0', async () => {
    expect(await runBuilt(['--version'])).toMatchObject({ code: 0, stdout: `${CLI_VERSION}\n` });
  });

  it('runs through the linked bin script with the same output and exit codes', async () => {
    expect(await runBuilt(['--version'], BIN)).toMatchObject({ code: 0, stdout: `${CLI_VERSION}\n` });
    expect((await runBuilt(['publish'], BIN)).code).toBe(2);
  });

  it('exits 2 on a usage error and 3 when the cluster cannot be reached', async () => {
    expect((await runBuilt(['publish'])).code).toBe(2);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const unreachable = await runBuilt([
      'queue',
      'list',
      '--servers',
      `127.0.0.1:${port}`,
      '--connect-timeout-ms',
      '200',
    ]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain('UNAVAILABLE');
  });
});
