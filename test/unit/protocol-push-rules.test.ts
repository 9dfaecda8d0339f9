import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  interestNameFault,
  interestNameProblem,
  MAX_INTEREST_LENGTH,
  MAX_INTERESTS_PER_DEVICE,
  MAX_INTERESTS_PER_PUBLISH,
  MAX_PUSH_TTL_SECONDS,
  MAX_PUSH_USER_ID_LENGTH,
  MAX_USERS_PER_PUBLISH,
  pushUserIdProblem,
} from '../../sdk/protocol';

test('interest names follow Beams: ≤164 characters of A-Z a-z 0-9 _ - = @ , . ;', () => {
  assert.equal(interestNameFault('news_2025-01=@,.;'), null);
  assert.equal(interestNameFault('x'.repeat(164)), null);
  assert.equal(interestNameFault('x'.repeat(165)), 'too-long');
  assert.equal(interestNameFault('private news'), 'characters');
  assert.equal(interestNameFault('#server-to-user-1'), 'characters');
  assert.equal(interestNameFault('emoji-😀'), 'characters');
  assert.equal(interestNameFault(''), 'empty');
  assert.equal(interestNameFault(42), 'empty');
  assert.equal(interestNameFault(undefined), 'empty');
});

test('interest name problems are worded as the server answers them', () => {
  assert.equal(interestNameProblem('news'), null);
  assert.equal(interestNameProblem(''), 'Interest names must be non-empty strings');
  assert.equal(interestNameProblem(42), 'Interest names must be non-empty strings');
  assert.equal(interestNameProblem('x'.repeat(165)), `Interest name is longer than 164 characters: ${'x'.repeat(32)}…`);
  assert.equal(interestNameProblem(`a b${'c'.repeat(100)}`), `Interest name may only contain A-Z a-z 0-9 _ - = @ , . ; : a b${'c'.repeat(61)}`);
});

test('push user ids: non-empty strings of at most 164 characters, any characters', () => {
  assert.equal(pushUserIdProblem('alice@example.com'), null);
  assert.equal(pushUserIdProblem('has space/and#more'), null);
  assert.equal(pushUserIdProblem('u'.repeat(164)), null);
  assert.equal(pushUserIdProblem('u'.repeat(165)), 'User id is longer than 164 characters');
  assert.equal(pushUserIdProblem(''), 'User ids must be non-empty strings');
  assert.equal(pushUserIdProblem(7), 'User ids must be non-empty strings');
});

test('push limits are Beams\' and Web Push\'s (push.md §1.3, §2.6)', () => {
  assert.equal(MAX_INTEREST_LENGTH, 164);
  assert.equal(MAX_PUSH_USER_ID_LENGTH, 164);
  assert.equal(MAX_INTERESTS_PER_DEVICE, 5000);
  assert.equal(MAX_INTERESTS_PER_PUBLISH, 100);
  assert.equal(MAX_USERS_PER_PUBLISH, 1000);
  assert.equal(MAX_PUSH_TTL_SECONDS, 28 * 24 * 3600);
});
