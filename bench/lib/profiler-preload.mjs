/**
 * Preloaded into each broker node (`NODE_OPTIONS=--import=<this file>`) when the suite profiles:
 * Node 20 refuses `--cpu-prof` in NODE_OPTIONS, so this starts V8's sampling profiler through the
 * in-process inspector and writes the profile, named like `--cpu-prof` would, into
 * FLOTILLA_BENCH_PROFILE_DIR when the process exits normally (a graceful SIGTERM stop; SIGKILL
 * loses it). Plain JavaScript: it runs under node without a TypeScript loader.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.FLOTILLA_BENCH_PROFILE_DIR;
/** V8's sampling interval in µs; the same default as `--cpu-prof`. */
const SAMPLING_INTERVAL_US = 1000;

if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
  session.post('Profiler.start');
  process.once('exit', () => {
    // An in-thread inspector session answers synchronously, so the profile is written before exit.
    session.post('Profiler.stop', (error, result) => {
      if (error) return;
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '.').slice(0, 15);
      writeFileSync(
        join(dir, `CPU.${stamp}.${process.pid}.0.001.cpuprofile`),
        JSON.stringify(result.profile),
      );
    });
  });
}
