#!/usr/bin/env node
// `npm start`: a local 3-node cluster from a fresh clone. Installs dependencies when they are
// missing, builds (incrementally), then runs `flotilla dev` with any extra arguments
// (`npm start -- --nodes 5`). Ctrl-C stops the cluster cleanly.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(args) {
  const result = spawnSync(npm, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) run(['ci', '--no-audit', '--no-fund']);
run(['run', '--silent', 'build']);

const dev = spawn(
  process.execPath,
  [join(root, 'packages/cli/dist/main.js'), 'dev', ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
// The dev supervisor handles Ctrl-C itself (it shares our terminal); relay other stops.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => dev.kill('SIGTERM'));
dev.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
