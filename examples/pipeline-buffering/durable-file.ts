/**
 * Writing a file so that once the promise resolves the file is on disk, whole, under its final
 * name: write a temporary file, fsync it, rename it into place, fsync the directory (the rename
 * itself lives in the directory). A crash before the rename leaves only a temporary file, which
 * readers ignore and the writer removes on its next start.
 */

import { open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Temporary files start with this; nothing else in the output directory does. */
export const TEMP_PREFIX = '.tmp-';

/** Writes `data` to `dir/name` durably (see the file comment). */
export async function writeFileDurably(dir: string, name: string, data: string | Uint8Array): Promise<void> {
  const temp = join(dir, `${TEMP_PREFIX}${name}`);
  try {
    const file = await open(temp, 'wx');
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, join(dir, name));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Removes temporary files a crashed writer left behind; returns how many. */
export async function removeTemporaryFiles(dir: string): Promise<number> {
  const leftovers = (await readdir(dir)).filter((name) => name.startsWith(TEMP_PREFIX));
  await Promise.all(leftovers.map((name) => rm(join(dir, name), { force: true })));
  return leftovers.length;
}
