import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allowsClientEvents, channelNameProblem, channelType, requiresAuth, serverToUserId, userIdProblem } from '../../sdk/protocol';

test('channel prefixes are matched whole, longest first (protocol.md §1.6)', () => {
  const cases: [string, string, boolean][] = [
    ['my-channel', 'public', false],
    ['cache-prices', 'public', true],
    ['private-room', 'private', false],
    ['private-cache-room', 'private', true],
    ['private-encrypted-room', 'private-encrypted', false],
    ['private-encrypted-cache-room', 'private-encrypted', true],
    ['presence-room', 'presence', false],
    ['presence-cache-room', 'presence', true],
    ['#server-to-user-42', 'user', false],
    // soketi's unanchored regexes and Reverb's prefix-without-dash get these wrong:
    ['privateroom', 'public', false],
    ['presenceroom', 'public', false],
    ['cacheroom', 'public', false],
    ['my-private-room', 'public', false],
  ];
  for (const [name, kind, cache] of cases) {
    assert.deepEqual(channelType(name), { kind, cache }, name);
  }
});

test('auth and client events only where the protocol allows them', () => {
  assert.equal(requiresAuth('public'), false);
  assert.equal(requiresAuth('private'), true);
  assert.equal(requiresAuth('private-encrypted'), true);
  assert.equal(requiresAuth('presence'), true);
  assert.equal(allowsClientEvents('public'), false);
  assert.equal(allowsClientEvents('private'), true);
  assert.equal(allowsClientEvents('presence'), true);
  assert.equal(allowsClientEvents('user'), false);
});

test('channel names: characters, length, reserved #', () => {
  assert.equal(channelNameProblem('a-Z_0=@,.;'), null);
  assert.match(channelNameProblem('has space') ?? '', /may contain only/);
  assert.match(channelNameProblem('emoji-😀') ?? '', /may contain only/);
  assert.match(channelNameProblem('') ?? '', /non-empty/);
  assert.match(channelNameProblem(42) ?? '', /non-empty string/);
  assert.equal(channelNameProblem('x'.repeat(200)), null);
  assert.match(channelNameProblem('x'.repeat(201)) ?? '', /longer than 200/);
  assert.match(channelNameProblem('x'.repeat(165), 164) ?? '', /longer than 164/);
  assert.match(channelNameProblem('#server-to-user-1') ?? '', /reserved/);
  assert.equal(channelNameProblem('#server-to-user-1', 200, true), null);
  assert.match(channelNameProblem('#other', 200, true) ?? '', /may contain only/);
  assert.match(channelNameProblem('#server-to-user-', 200, true) ?? '', /User id/);
});

test('user ids and server-to-user channels', () => {
  assert.equal(serverToUserId('#server-to-user-abc'), 'abc');
  assert.equal(serverToUserId('private-x'), null);
  assert.equal(userIdProblem('u'), null);
  assert.match(userIdProblem('') ?? '', /non-empty/);
  assert.match(userIdProblem(5) ?? '', /non-empty string/);
  assert.match(userIdProblem('x'.repeat(129)) ?? '', /128/);
});
