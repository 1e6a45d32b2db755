/**
 * Static bearer tokens with per-queue-pattern permissions (`--auth-tokens file.json`).
 *
 * File format:
 * ```json
 * { "tokens": [
 *   { "name": "api", "token": "s3cret-token", "permissions": [
 *       { "queues": "emails*", "actions": ["publish"] },
 *       { "queues": "*", "actions": ["consume", "manage"] } ] } ] }
 * ```
 * `token` may also be given as `"sha256:<hex>"` so the file need not hold the secret itself.
 * Queue patterns are exact names with `*` matching any run of characters. `manage` covers queue
 * administration (create, delete, purge, update, redrive); cluster-wide operations need `manage` on `*`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export type Action = 'publish' | 'consume' | 'manage';

export interface Principal {
  name: string;
  /** True when `action` on `queue` is allowed. */
  can(action: Action, queue: string): boolean;
}

/** Everything allowed: used when the server runs without `--auth-tokens`. */
export const ANONYMOUS_ADMIN: Principal = { name: 'anonymous', can: () => true };

const fileSchema = z
  .object({
    tokens: z.array(
      z
        .object({
          name: z.string().min(1).max(200),
          token: z.string().min(8, 'tokens must be at least 8 characters').max(4096),
          permissions: z.array(
            z
              .object({
                queues: z.string().min(1).max(400),
                actions: z.array(z.enum(['publish', 'consume', 'manage'])).min(1),
              })
              .strict(),
          ),
        })
        .strict(),
    ),
  })
  .strict();

interface Grant {
  pattern: RegExp;
  actions: Set<Action>;
}

interface TokenEntry {
  name: string;
  digest: Buffer;
  grants: Grant[];
}

export class AuthConfigError extends Error {
  override readonly name = 'AuthConfigError';
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/** Verifies presented tokens; each check costs one hash and a constant-time compare per token. */
export class TokenAuthenticator {
  private constructor(private readonly entries: TokenEntry[]) {}

  static fromFile(path: string): TokenAuthenticator {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new AuthConfigError(`auth tokens ${path}: ${(err as Error).message}`);
    }
    return TokenAuthenticator.fromJson(raw, path);
  }

  static fromJson(raw: unknown, source = 'auth tokens'): TokenAuthenticator {
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      throw new AuthConfigError(`${source}: ${problems}`);
    }
    const entries = parsed.data.tokens.map((t) => ({
      name: t.name,
      digest: t.token.startsWith('sha256:') ? Buffer.from(t.token.slice(7), 'hex') : sha256(t.token),
      grants: t.permissions.map((p) => ({
        pattern: globToRegExp(p.queues),
        actions: new Set<Action>(p.actions),
      })),
    }));
    for (const e of entries) {
      if (e.digest.length !== 32)
        throw new AuthConfigError(`${source}: token of ${e.name} is not a valid sha256 digest`);
    }
    return new TokenAuthenticator(entries);
  }

  /** The principal for a presented token, or null when it matches none. */
  authenticate(token: string | undefined | null): Principal | null {
    if (!token) return null;
    const digest = sha256(token);
    let found: TokenEntry | null = null;
    // Compare against every entry so timing does not reveal which one matched.
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, digest)) found = entry;
    }
    if (!found) return null;
    const { name, grants } = found;
    return {
      name,
      can: (action, queue) => grants.some((g) => g.actions.has(action) && g.pattern.test(queue)),
    };
  }
}
