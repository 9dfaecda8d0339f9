import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { Tally } from '../../server/metrics/Tally';

void test('a Tally exposes a cumulative Prometheus counter, added to at each scrape', async () => {
  const registry = new Registry();
  const t = new Tally<'app_id' | 'code'>('t_total', 'test counter', ['app_id', 'code'], [registry]);
  t.add('1\n4001', { app_id: '1', code: 4001 });
  t.add('1\n4001', { app_id: '1', code: 4001 }, 2);
  t.add('2\n4009', { app_id: '2', code: 4009 }, 5);
  const first = await registry.metrics();
  assert.match(first, /^# TYPE t_total counter$/m);
  assert.match(first, /^t_total\{app_id="1",code="4001"\} 3$/m);
  assert.match(first, /^t_total\{app_id="2",code="4009"\} 5$/m);
  // A scrape with nothing new changes nothing; later adds accumulate on top of what was exposed.
  assert.equal(await registry.metrics(), first);
  t.add('1\n4001', { app_id: '1', code: 4001 }, 4);
  const second = await registry.metrics();
  assert.match(second, /^t_total\{app_id="1",code="4001"\} 7$/m);
  assert.match(second, /^t_total\{app_id="2",code="4009"\} 5$/m);
  // A series kept by the caller counts into the same place as add().
  const kept = t.series('2\n4009', { app_id: '2', code: 4009 });
  kept.n += 2;
  t.add('2\n4009', { app_id: '2', code: 4009 });
  assert.match(await registry.metrics(), /^t_total\{app_id="2",code="4009"\} 8$/m);
});
