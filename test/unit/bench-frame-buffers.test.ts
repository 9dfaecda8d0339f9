import { test } from 'node:test';
import assert from 'node:assert/strict';
import { giveBackFrameBuffer, spareFrameBuffers, takeFrameBuffer } from '../../bench/frame-buffers';
import { DeliveryCounter } from '../../bench/delivery-counter';

test('frame buffers have the asked size, are reused once given back, and are never handed out twice', () => {
  const a = takeFrameBuffer(100_000);
  assert.equal(a.length, 100_000);
  assert.equal(a.buffer.byteLength, 131_072);
  const b = takeFrameBuffer(120_000);
  assert.notEqual(b.buffer, a.buffer, 'a buffer still held is not handed out again');
  giveBackFrameBuffer(a);
  const c = takeFrameBuffer(70_000);
  assert.equal(c.buffer, a.buffer, 'a buffer given back serves the next frame of its size');
  assert.equal(c.length, 70_000);
  giveBackFrameBuffer(b);
  giveBackFrameBuffer(c);
  assert.equal(spareFrameBuffers().get(131_072), 2);

  // Small frames get 64 KB; frames over 16 MB are not pooled.
  const small = takeFrameBuffer(10);
  assert.equal(small.buffer.byteLength, 65_536);
  giveBackFrameBuffer(small);
  const huge = takeFrameBuffer(17_000_000);
  assert.equal(huge.length, 17_000_000);
  giveBackFrameBuffer(huge);
  assert.equal([...spareFrameBuffers().keys()].some((size) => size > 16_777_216), false);

  // At most 64 spares per size.
  const many = Array.from({ length: 80 }, () => takeFrameBuffer(300_000));
  many.forEach(giveBackFrameBuffer);
  assert.equal(spareFrameBuffers().get(524_288), 64);
});

test('the delivery counter counts names in any order, and forgets them on reset', () => {
  const counter = new DeliveryCounter();
  for (const name of ['added', 'added', 'removed', 'added', 'other', 'removed', 'added']) counter.onOtherEvent(name);
  assert.equal(counter.other('added'), 4);
  assert.equal(counter.other('removed'), 2);
  assert.equal(counter.other('other'), 1);
  counter.reset();
  assert.equal(counter.other('added'), 0);
  counter.onOtherEvent('added');
  counter.onOtherEvent('added');
  assert.equal(counter.other('added'), 2, 'counts after a reset are kept, not added to a forgotten count');
});
