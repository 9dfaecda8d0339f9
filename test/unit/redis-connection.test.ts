/** The `redis` option (URL or object) → connection spec, and the key layout's hash tags. Pure, no Redis. */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RedisConfigError, describeRedis, parseRedisUrl, redisSpec } from '../../server/cluster/redis-connection';
import { checkPrefix, groupId, parseGroupId, redisKeys } from '../../server/cluster/redis-keys';
import { ConfigError, loadOptions } from '../../server/options/load-options';

void test('plain redis:// and rediss:// URLs are standalone', () => {
  assert.deepEqual(parseRedisUrl('redis://:pw@10.0.0.1:6380/2'), { mode: 'standalone', url: 'redis://:pw@10.0.0.1:6380/2', tls: false });
  assert.equal((parseRedisUrl('rediss://host') as { tls: boolean }).tls, true);
  assert.equal(describeRedis(parseRedisUrl('redis://user:secret@h:1')), 'redis://***@h:1');
});

void test('redis+sentinel:// lists sentinels, the master name and optional db and auth', () => {
  assert.deepEqual(parseRedisUrl('redis+sentinel://u:p%40ss@s1:26380,s2,[::1]:26381/mymaster/3?sentinelPassword=sp'), {
    mode: 'sentinel',
    sentinels: [
      { host: 's1', port: 26380 },
      { host: 's2', port: 26379 },
      { host: '::1', port: 26381 },
    ],
    name: 'mymaster',
    db: 3,
    sentinelPassword: 'sp',
    username: 'u',
    password: 'p@ss',
    tls: false,
  });
  assert.throws(() => parseRedisUrl('redis+sentinel://s1:26379'), RedisConfigError);
});

void test('redis+cluster:// lists seed nodes', () => {
  assert.deepEqual(parseRedisUrl('rediss+cluster://:pw@n1:7000,n2:7001'), {
    mode: 'cluster',
    nodes: [
      { host: 'n1', port: 7000 },
      { host: 'n2', port: 7001 },
    ],
    password: 'pw',
    tls: true,
  });
  assert.throws(() => parseRedisUrl('http://x'), RedisConfigError);
});

void test('the config-file object forms', () => {
  assert.deepEqual(redisSpec({ cluster: ['a:7000', 'b'], password: 'x' }), { mode: 'cluster', nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 6379 }], password: 'x' });
  assert.deepEqual(redisSpec({ sentinels: [{ host: 's', port: 5000 }, { host: 't' }], name: 'm', db: 1 }), {
    mode: 'sentinel',
    sentinels: [
      { host: 's', port: 5000 },
      { host: 't', port: 26379 },
    ],
    name: 'm',
    db: 1,
  });
  assert.equal(redisSpec({ url: 'redis://h:1', password: 'p' }).password, 'p');
  assert.throws(() => redisSpec({}), RedisConfigError);
  assert.throws(() => redisSpec({ url: 'redis://h', cluster: ['a'] }), RedisConfigError);
  assert.throws(() => redisSpec({ sentinels: [{ host: 's' }] }), RedisConfigError);
});

void test('HERALD_REDIS_URL / HERALD_REDIS_PREFIX and config errors', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-opts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { HERALD_APP_ID: '1', HERALD_APP_KEY: 'k', HERALD_APP_SECRET: 'secret-secret', HERALD_DATA_DIR: dir };
  const none = loadOptions(env).options;
  assert.equal(none.redis, undefined);
  assert.equal(none.redisPrefix, 'herald:');
  const set = loadOptions({ ...env, HERALD_REDIS_URL: 'redis+cluster://n1:7000', HERALD_REDIS_PREFIX: 'h1:' }).options;
  assert.equal(set.redis, 'redis+cluster://n1:7000');
  assert.equal(set.redisPrefix, 'h1:');
  assert.throws(() => loadOptions({ ...env, HERALD_REDIS_URL: 'memcached://x' }), ConfigError);
  assert.throws(() => loadOptions({ ...env, HERALD_REDIS_URL: 'redis+sentinel://s1' }), ConfigError);
  assert.throws(() => loadOptions({ ...env, HERALD_REDIS_URL: 'redis://h', HERALD_REDIS_PREFIX: 'a{b}' }), ConfigError);
});

void test('keys a script touches together share one hash tag', () => {
  const k = redisKeys('herald:');
  const tag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1];
  assert.equal(new Set([k.meta('1'), k.chans('1'), k.users('1'), k.appNode('1', 'n1')].map(tag)).size, 1);
  assert.equal(new Set([k.members('1', 'presence-x'), k.sockets('1', 'presence-x'), k.channelNode('1', 'presence-x', 'n1')].map(tag)).size, 1);
  assert.equal(tag(k.members('1', 'presence-x')), '1:presence-x');
  assert.throws(() => checkPrefix('a{b}'));
  for (const g of [{ kind: 'app', appId: '42' }, { kind: 'presence', appId: '42', channel: 'presence-a:b' }] as const) {
    assert.deepEqual(parseGroupId(groupId(g)), g);
  }
});
