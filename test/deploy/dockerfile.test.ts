/**
 * Proves deploy/Dockerfile's key facts without a Docker daemon: two stages on node:20-slim, a build
 * stage that installs from the lockfile, builds and prunes dev dependencies, a runtime stage that
 * copies every workspace's dist and package.json plus node_modules and the dashboard, runs as a
 * non-root user, keeps data in a VOLUME at FLOTILLA_DATA_DIR, exposes the listening port, starts
 * `flotilla server`, and has a HEALTHCHECK that really tells a healthy node from a failing one
 * (its command is run here against a stand-in /health). Also checks that .dockerignore keeps
 * everything the build copies.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cluster.js';

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  return joined
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

const all = instructions(readFileSync(join(REPO_ROOT, 'deploy/Dockerfile'), 'utf8'));
const stageStarts = all.flatMap((ins, i) => (ins.keyword === 'FROM' ? [i] : []));
const buildStage = all.slice(stageStarts[0], stageStarts[1]);
const runtime = all.slice(stageStarts[1]);
const args = (stage: Instruction[], keyword: string) =>
  stage.filter((i) => i.keyword === keyword).map((i) => i.args);
const last = (stage: Instruction[], keyword: string) => args(stage, keyword).at(-1) ?? '';

/** `ENV A=1 B=2` lines of a stage as a map. */
function envOf(stage: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of args(stage, 'ENV')) {
    for (const match of line.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) env[match[1]!] = match[2]!;
  }
  return env;
}

const runtimeEnv = envOf(runtime);
const workspaces = (
  JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }
).workspaces;

describe('deploy/Dockerfile', () => {
  it('builds in one stage and runs in another, both on node:20-slim', () => {
    expect(stageStarts).toHaveLength(2);
    expect(all[stageStarts[0]!]!.args).toMatch(/^node:20-slim AS build$/i);
    expect(all[stageStarts[1]!]!.args).toBe('node:20-slim');
  });

  it('installs from the lockfile, builds, then drops dev dependencies', () => {
    const runs = args(buildStage, 'RUN').join(' && ');
    const order = ['npm ci', 'npm run build', 'npm prune --omit=dev'].map((step) => runs.indexOf(step));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('copies node_modules, the dashboard and every workspace’s dist and package.json into the runtime', () => {
    const copies = args(runtime, 'COPY').filter((a) => a.startsWith('--from=build'));
    const sources = copies.map((a) => a.split(/\s+/)[1]);
    expect(sources).toContain('/src/node_modules');
    expect(sources).toContain('/src/packages/node/dashboard');
    for (const ws of workspaces) {
      expect(sources).toContain(`/src/${ws}/dist`);
      expect(sources).toContain(`/src/${ws}/package.json`);
    }
  });

  it('runs as a non-root user with data in a volume at FLOTILLA_DATA_DIR', () => {
    const user = last(runtime, 'USER');
    expect(user).not.toBe('');
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(runtimeEnv.FLOTILLA_DATA_DIR).toBeDefined();
    expect(last(runtime, 'VOLUME')).toContain(runtimeEnv.FLOTILLA_DATA_DIR);
  });

  it('exposes the listening port and starts `flotilla server` configured by FLOTILLA_* variables', () => {
    const port = runtimeEnv.FLOTILLA_LISTEN?.split(':').pop();
    expect(runtimeEnv.FLOTILLA_LISTEN).toMatch(/^0\.0\.0\.0:\d+$/);
    expect(last(runtime, 'EXPOSE')).toBe(port);
    expect(JSON.parse(last(runtime, 'ENTRYPOINT'))).toEqual(['node', 'packages/cli/dist/main.js', 'server']);
    expect(args(runtime, 'CMD')).toEqual([]);
  });

  it('has a HEALTHCHECK on /health without curl', () => {
    const hc = last(runtime, 'HEALTHCHECK');
    expect(hc).toContain('/health');
    expect(hc).not.toMatch(/curl|wget/);
  });

  it('whose command passes on a healthy node and fails on a failing or absent one', async () => {
    const command = JSON.parse(last(runtime, 'HEALTHCHECK').replace(/^.*?CMD\s+/, '')) as string[];
    expect(command[0]).toBe('node');
    let healthy = true;
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/health' && healthy ? 200 : 503).end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const run = (listen: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, command.slice(1), {
          env: { FLOTILLA_LISTEN: listen },
          stdio: 'ignore',
        });
        child.once('exit', (code) => resolve(code));
      });
    try {
      expect(await run(`0.0.0.0:${port}`)).toBe(0);
      healthy = false;
      expect(await run(`0.0.0.0:${port}`)).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await run(`0.0.0.0:${port}`)).toBe(1);
  });

  it('copies in the build stage only what exists and .dockerignore keeps', () => {
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const sources = args(buildStage, 'COPY').flatMap((a) => a.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
      const topLevel = source.split('/')[0];
      expect(ignored, source).not.toContain(topLevel);
      expect(ignored, source).not.toContain(source);
    }
    expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']));
  });
});
