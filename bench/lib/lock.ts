/**
 * The machine-wide benchmark lock (`flock /tmp/anchor-bench.lock`, also taken by the anchor
 * scripts under shared/anchors), so timed runs of different systems never overlap. A child
 * `flock` process holds the lock while its stdin is open; ending stdin (or this process dying)
 * releases it.
 */
import { spawn } from 'node:child_process';

export const DEFAULT_LOCK_FILE = '/tmp/anchor-bench.lock';

export interface HeldLock {
  release(): Promise<void>;
}

/** Waits for the lock on `file`; resolves once held. */
export function acquireLock(file: string): Promise<HeldLock> {
  const child = spawn('flock', [file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`flock ${file} exited with ${code} before locking`)));
    child.stdout.once('data', () =>
      resolve({
        release: async () => {
          child.stdin.end();
          await exited;
        },
      }),
    );
  });
}
