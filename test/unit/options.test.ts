import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadOptions } from '../../server/options/load-options';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-opts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('with no configuration a numeric default app is generated once and kept', (t) => {
  const dir = tmp(t);
  const first = loadOptions({ HERALD_DATA_DIR: dir });
  assert.equal(first.generatedApp, true);
  assert.equal(first.usingDefaultApp, true);
  const app = first.options.apps[0];
  assert.match(app.id, /^\d+$/);
  assert.match(app.key, /^[0-9a-f]{20}$/);
  assert.equal(app.maxEventBytes, 10240);
  assert.equal(app.maxPresenceMembers, 100);
  assert.equal(app.maxClientEventsPerSecond, 10);
  assert.equal(first.options.port, 6001);
  assert.equal(first.options.host, '0.0.0.0');
  const stored = JSON.parse(readFileSync(join(dir, 'default-app.json'), 'utf8')) as { id: string };
  assert.equal(stored.id, app.id);
  const second = loadOptions({ HERALD_DATA_DIR: dir });
  assert.equal(second.generatedApp, false);
  assert.deepEqual(second.options.apps[0], app);
});

test('HERALD_APP_* and HERALD_PORT/HOST override', (t) => {
  const dir = tmp(t);
  const { options, generatedApp } = loadOptions({ HERALD_DATA_DIR: dir, HERALD_APP_ID: '42', HERALD_APP_KEY: 'k', HERALD_APP_SECRET: 'secret-123', HERALD_PORT: '7001', HERALD_HOST: '127.0.0.1' });
  assert.equal(generatedApp, false);
  assert.deepEqual([options.apps[0].id, options.apps[0].key, options.apps[0].secret], ['42', 'k', 'secret-123']);
  assert.equal(options.port, 7001);
  assert.equal(options.host, '127.0.0.1');
  assert.equal(options.apps[0].clientEvents, false);
  const withEvents = loadOptions({ HERALD_DATA_DIR: dir, HERALD_APP_CLIENT_EVENTS: 'true' });
  assert.equal(withEvents.options.apps[0].clientEvents, true);
});

test('a config file with several apps is validated with defaults filled in', (t) => {
  const dir = tmp(t);
  const file = join(dir, 'herald.json');
  writeFileSync(file, JSON.stringify({ port: 7002, apps: [{ id: '1', key: 'a', secret: 'secret-a1', clientEvents: true }, { id: '2', key: 'b', secret: 'secret-b2', enabled: false }] }));
  const { options, usingDefaultApp } = loadOptions({ HERALD_CONFIG: file, HERALD_DATA_DIR: dir });
  assert.equal(usingDefaultApp, false);
  assert.equal(options.apps.length, 2);
  assert.equal(options.apps[0].clientEvents, true);
  assert.equal(options.apps[1].enabled, false);
  assert.equal(options.apps[1].maxBatchSize, 10);
});

test('bad configuration names the field', (t) => {
  const dir = tmp(t);
  const file = join(dir, 'bad.json');
  const cases: [unknown, RegExp][] = [
    [{ apps: [{ id: '1', key: 'a', secret: 'secret-a1', maxConnections: 'many' }] }, /config\.apps\.0\.maxConnections must be integer/],
    [{ apps: [{ id: '1', key: 'a' }] }, /config\.apps\.0 must have required property 'secret'/],
    [{ port: 70000 }, /config\.port must be <= 65535/],
    [{ apps: [{ id: '1', key: 'a', secret: 'secret-a1', colour: 'red' }] }, /must NOT have additional properties 'colour'/],
    [{ apps: [{ id: '1', key: 'a', secret: 'secret-a1' }, { id: '1', key: 'b', secret: 'secret-b1' }] }, /config\.apps\.1\.id '1' is used twice/],
  ];
  for (const [config, message] of cases) {
    writeFileSync(file, JSON.stringify(config));
    assert.throws(() => loadOptions({ HERALD_CONFIG: file, HERALD_DATA_DIR: dir }), (err: Error) => err instanceof ConfigError && message.test(err.message));
  }
  writeFileSync(file, '{ not json');
  assert.throws(() => loadOptions({ HERALD_CONFIG: file, HERALD_DATA_DIR: dir }), /not valid JSON/);
  assert.throws(() => loadOptions({ HERALD_CONFIG: join(dir, 'missing.json') }), /cannot read/);
  assert.throws(() => loadOptions({ HERALD_PORT: 'abc', HERALD_DATA_DIR: dir }), /HERALD_PORT must be a whole number/);
});
