/** Proves the server configuration contract: flag > env > file > default, and clear errors naming the setting. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, envName, loadServerConfig, parsePeers } from './config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'flotilla-config-'));
  dirs.push(d);
  return d;
}

describe('loadServerConfig', () => {
  it('applies defaults for a single node', () => {
    const c = loadServerConfig({ nodeId: 'n1' }, {}, '/srv');
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 7401 });
    expect(c.advertise).toEqual(c.listen);
    expect(c.dataDir).toBe('/srv/.flotilla/n1');
    expect([...c.peers.keys()]).toEqual(['n1']);
    expect(c.electionTimeoutMs).toBe(1000);
  });

  it('takes flags over env over config file', () => {
    const dir = tempDir();
    const file = join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({ nodeId: 'n1', listen: '127.0.0.1:9001', heartbeatMs: 150, logLevel: 'warn' }),
    );
    const env = { FLOTILLA_CONFIG: file, FLOTILLA_LISTEN: '127.0.0.1:9002', FLOTILLA_LOG_LEVEL: 'debug' };
    const c = loadServerConfig({ logLevel: 'error' }, env, dir);
    expect(c.listen.port).toBe(9002);
    expect(c.heartbeatMs).toBe(150);
    expect(c.logLevel).toBe('error');
  });

  it('maps names to FLOTILLA_ upper snake case', () => {
    expect(envName('nodeId')).toBe('FLOTILLA_NODE_ID');
    expect(envName('maxSubscriptionsPerSession')).toBe('FLOTILLA_MAX_SUBSCRIPTIONS_PER_SESSION');
  });

  it('accepts peers as an object in the config file', () => {
    const dir = tempDir();
    const file = join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({ nodeId: 'n2', clusterSecret: 'abcdefgh', peers: { n1: 'a:1', n2: 'b:2' } }),
    );
    const c = loadServerConfig({ config: file }, {}, dir);
    expect(c.peers.get('n1')).toEqual({ host: 'a', port: 1 });
  });

  it.each([
    [{}, /nodeId/],
    [{ nodeId: 'bad id' }, /nodeId/],
    [{ nodeId: 'n1', listen: 'nope' }, /listen/],
    [{ nodeId: 'n1', listen: '0.0.0.0:7401' }, /advertise/],
    [{ nodeId: 'n1', tickMs: 'x' }, /tickMs/],
    [{ nodeId: 'n1', peers: 'n1=a:1,n2=b:2' }, /clusterSecret/],
    [{ nodeId: 'n1', heartbeatMs: 500 }, /heartbeatMs/],
  ])('rejects %j', (flags, message) => {
    expect(() => loadServerConfig(flags as never, {}, '/')).toThrow(message);
    expect(() => loadServerConfig(flags as never, {}, '/')).toThrow(ConfigError);
  });

  it('rejects unknown settings in the config file', () => {
    const dir = tempDir();
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ nodeId: 'n1', bogus: 1 }));
    expect(() => loadServerConfig({ config: file }, {}, dir)).toThrow(/bogus/);
    writeFileSync(file, '[1]');
    expect(() => loadServerConfig({ config: file }, {}, dir)).toThrow(/JSON object/);
  });

  it('rejects duplicate and malformed peers', () => {
    expect(() => parsePeers('n1=a:1,n1=b:2')).toThrow(/twice/);
    expect(() => parsePeers('=a:1')).toThrow(/id=host:port/);
    expect(() => parsePeers('n1=a:99999')).toThrow(/host:port/);
    expect(parsePeers('n1=[::1]:7401').get('n1')).toEqual({ host: '::1', port: 7401 });
  });
});
