import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { PendingHistogram, Tally } from '../../server/metrics/Tally';

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

void test('a PendingHistogram exposes exactly what a prom-client Histogram given the same observations does', async () => {
  const buckets = [0.0005, 0.001, 0.005, 0.01, 0.1];
  const ours = new Registry();
  const theirs = new Registry();
  const h = new PendingHistogram('lat_seconds', 'test histogram', buckets, [ours]);
  const reference = new Histogram({ name: 'lat_seconds', help: 'test histogram', buckets, registers: [theirs] });
  const observe = (v: number): void => {
    h.observe(v);
    if (Number.isFinite(v)) reference.observe(v);
  };
  // Before any observation, and then values on, between and beyond the bounds (NaN is dropped, as a
  // non-finite value has no bucket).
  assert.equal(await ours.metrics(), await theirs.metrics());
  for (const v of [0, 0.0005, 0.0007, 0.001, 0.02, 0.1, 3, Number.NaN]) observe(v);
  assert.equal(await ours.metrics(), await theirs.metrics());
  // Cumulative across scrapes, and past the pending limit (4,096) without a scrape in between.
  for (let i = 0; i < 10_000; i++) observe((i % 997) / 10_000);
  const text = await ours.metrics();
  assert.equal(text, await theirs.metrics());
  assert.match(text, /^lat_seconds_count 10007$/m);
});
