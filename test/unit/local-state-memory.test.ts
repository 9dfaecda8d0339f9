/**
 * A single node's state must not keep what has run out: rate budgets of past seconds (their names carry
 * client addresses), cache channels' last events past their TTL when nobody reads them again, and leave
 * marks past theirs. Each of these grew with every address, channel or leave ever seen before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalState } from '../../server/state/LocalState';

/** The maps under test (private: what they hold is the point here, not what the API answers). */
function held(state: LocalState): { rates: Map<string, unknown>; cache: Map<string, unknown>; marks: Map<string, unknown> } {
  return state as unknown as { rates: Map<string, unknown>; cache: Map<string, unknown>; marks: Map<string, unknown> };
}

void test('rate budgets of past seconds are dropped, and a budget still holds within its second', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
  const state = new LocalState();
  for (let i = 0; i < 1000; i++) assert.equal(await state.takeRate('app', `push-ip:10.0.${i >> 8}.${i & 255}`, 20, 1), 0);
  assert.equal(held(state).rates.size, 1000);

  t.mock.timers.tick(1000);
  for (let i = 0; i < 20; i++) assert.equal(await state.takeRate('app', 'push-ip:10.9.9.9', 20, 1), 0);
  assert.equal(await state.takeRate('app', 'push-ip:10.9.9.9', 20, 1), 1, 'the 21st in one second waits');
  assert.equal(held(state).rates.size, 1, "only this second's bucket is kept");

  t.mock.timers.tick(1000);
  assert.equal(await state.takeRate('app', 'push-ip:10.9.9.9', 20, 1), 0, 'the budget refills at the next second');
});

void test('expired cache entries and marks are swept out even when nobody reads them; live ones stay', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
  const state = new LocalState();
  await state.setCache('app', 'cache-kept', '{"event":"kept"}', 3600);
  const kept = state.markNow('kept-mark', 3_600_000);
  for (let i = 0; i < 1000; i++) {
    await state.setCache('app', `cache-user-${i}`, '{"event":"x","data":"…"}', 30);
    state.markNow(`leave-${i}`, 13_000);
    await state.setMark('app', { channel: `presence-${i}`, userId: 'u1' }, `token-${i}`, 13_000);
  }
  assert.equal(held(state).cache.size, 1001);
  assert.equal(held(state).marks.size, 2001);

  // Within the minute nothing is swept, expired or not (a sweep costs a pass over the maps).
  t.mock.timers.tick(31_000);
  await state.setCache('app', 'cache-late', '{}', 30);
  assert.equal(held(state).cache.size, 1002);

  t.mock.timers.tick(30_000);
  await state.setCache('app', 'cache-new', '{}', 30);
  assert.deepEqual([...held(state).cache.keys()].sort(), ['app\ncache-kept', 'app\ncache-new'], 'the expired entries are gone');
  assert.deepEqual([...held(state).marks.keys()], ['kept-mark'], 'the expired marks are gone');
  assert.equal((await state.getCache('app', 'cache-kept'))?.frame, '{"event":"kept"}');
  assert.equal(state.takeMarkNow('kept-mark', kept), true);
});
