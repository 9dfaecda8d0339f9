import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOptions } from '../../server/options/load-options';
import { readMemory } from '../../server/http/memory-pressure';
import { ConnectionsPerIp } from '../../server/ws/ConnectionsPerIp';
import { configDefault } from '../../server/options/config-default';

test('memory: without a configured limit the JS heap is compared with V8’s heap limit', () => {
  const r = readMemory(85, 0, { rss: 900, heapUsed: 80, heapLimit: 100 });
  assert.deepEqual(r, { basis: 'heap', usedBytes: 80, limitBytes: 100, percent: 80, over: false });
  assert.equal(readMemory(85, 0, { rss: 0, heapUsed: 86, heapLimit: 100 }).over, true);
});

test('memory: with a configured limit (a container’s) the resident set is compared', () => {
  const r = readMemory(50, 1000, { rss: 600, heapUsed: 1, heapLimit: 100 });
  assert.deepEqual(r, { basis: 'rss', usedBytes: 600, limitBytes: 1000, percent: 60, over: true });
});

test('memory: the live process is read when no sample is given', () => {
  const r = readMemory(100, 0);
  assert.equal(r.basis, 'heap');
  assert.ok(r.usedBytes > 0 && r.limitBytes > r.usedBytes);
});

test('per-IP connections: counted up to the limit, released on close; -1 counts nothing', () => {
  const limit = new ConnectionsPerIp(2);
  assert.equal(limit.take('1.1.1.1'), true);
  assert.equal(limit.take('1.1.1.1'), true);
  assert.equal(limit.take('1.1.1.1'), false);
  assert.equal(limit.take('2.2.2.2'), true, 'other addresses are independent');
  limit.release('1.1.1.1');
  assert.equal(limit.take('1.1.1.1'), true);
  const unlimited = new ConnectionsPerIp(-1);
  for (let i = 0; i < 1000; i++) assert.equal(unlimited.take('1.1.1.1'), true);
});

test('configDefault reads defaults from the schema', () => {
  assert.equal(configDefault('maxConnectionsPerIp'), -1);
  assert.equal(configDefault('memoryThresholdPercent'), 85);
  assert.equal(configDefault('metricsEnabled'), true);
  assert.equal(configDefault('adminToken'), undefined);
});

test('HERALD_ADMIN_TOKEN and HERALD_TLS_* set the console token and TLS files; a short token is refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-ops-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const base = { HERALD_DATA_DIR: dir };
  const { options } = loadOptions({ ...base, HERALD_ADMIN_TOKEN: 'x'.repeat(16), HERALD_TLS_CERT: '/c.pem', HERALD_TLS_KEY: '/k.pem' });
  assert.equal(options.adminToken, 'x'.repeat(16));
  assert.deepEqual(options.tls, { cert: '/c.pem', key: '/k.pem' });
  assert.equal(options.apps[0].maxRestRequestsPerSecond, -1);
  assert.equal(options.maxConnectionsPerIp, -1);
  assert.throws(() => loadOptions({ ...base, HERALD_ADMIN_TOKEN: 'short' }), /config\.adminToken must NOT have fewer than 16 characters/);
  assert.throws(() => loadOptions({ ...base, HERALD_TLS_CERT: '/c.pem' }), /config\.tls must have required property 'key'/);
});
