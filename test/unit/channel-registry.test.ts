import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelRegistry } from '../../server/channels/ChannelRegistry';
import type { Connection } from '../../server/ws/Connection';

/** The registry only reads `app.id` of a connection. */
const conn = (appId: string, n: number): Connection => ({ app: { id: appId }, socketId: `${n}.${n}` }) as unknown as Connection;

test('the registry keeps channels apart per app, reports first and last subscribers, and lists what is occupied', () => {
  const r = new ChannelRegistry();
  const a1 = conn('a', 1);
  const a2 = conn('a', 2);
  const b1 = conn('b', 3);
  assert.equal(r.join(a1, 'room'), true, 'first on this node');
  assert.equal(r.join(a2, 'room'), false);
  assert.equal(r.join(a1, 'room'), false, 'joining twice counts once');
  assert.equal(r.join(b1, 'room'), true, 'the same name in another app is another channel');
  // An app id and a channel that would make the same joined string must not meet.
  assert.equal(r.join(conn('a\nroom', 4), 'x'), true);
  assert.deepEqual([...(r.subscribers('a', 'room') ?? [])], [a1, a2]);
  assert.deepEqual([...(r.subscribers('b', 'room') ?? [])], [b1]);
  assert.equal(r.subscribers('a', 'other'), undefined);
  assert.equal(r.subscribers('c', 'room'), undefined);
  assert.deepEqual([...r.localChannels()].sort(), [['a', 'room'], ['a\nroom', 'x'], ['b', 'room']].sort());

  assert.equal(r.leave(a1, 'room'), false, 'a2 is still there');
  assert.equal(r.leave(a1, 'room'), false, 'leaving twice changes nothing');
  assert.equal(r.leave(b1, 'nowhere'), false);
  assert.equal(r.leave(a2, 'room'), true, 'the last one');
  assert.equal(r.subscribers('a', 'room'), undefined);
  assert.deepEqual([...r.localChannels()].sort(), [['a\nroom', 'x'], ['b', 'room']].sort());
  assert.equal(r.join(a2, 'room'), true, 'first again after emptying');
});
