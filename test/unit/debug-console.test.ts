import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { DebugConsole, type EventStream } from '../../server/console/DebugConsole';
import type { Gateway } from '../../server/Gateway';
import { LocalState } from '../../server/state/LocalState';
import { emptyWebhookCounters } from '../../server/webhooks/WebhookSender';
import { testApp } from '../helpers/herald';

/** An event stream that records what it was sent; `writableLength` stands for a slow reader's backlog. */
class FakeStream implements EventStream {
  chunks: string[] = [];
  ended = false;
  writableLength = 0;
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  logIds(): number[] {
    return [...this.chunks.join('').matchAll(/^event: log\ndata: (.*)$/gm)].map((m) => (JSON.parse(m[1]) as { id: number }).id);
  }
}

function makeConsole(): DebugConsole {
  const gateway = { state: new LocalState() } as unknown as Gateway;
  return new DebugConsole(gateway, pino({ level: 'silent' }), { stats: () => ({ total: emptyWebhookCounters(), apps: {} }) });
}

test('nothing is recorded for an app nobody watches', () => {
  const dc = makeConsole();
  const app = testApp();
  dc.published(app, ['a'], 'e', '{}');
  dc.report(app.id, 'webhook', { detail: 'sent' });
  const s = new FakeStream();
  const detach = dc.attach(app.id, s);
  assert.deepEqual(s.logIds(), [], 'no backlog from before the console opened');
  dc.published(app, ['a'], 'e', '{"x":1}');
  assert.equal(s.logIds().length, 1);
  detach();
  assert.equal(s.ended, true);
  assert.equal(dc.watching(app.id), false);
});

test('the backlog is bounded and replayed to a console that opens later; data is cut', () => {
  const dc = makeConsole();
  const app = testApp();
  const first = new FakeStream();
  const detach = dc.attach(app.id, first);
  for (let i = 0; i < 300; i++) dc.report(app.id, 'push', { detail: `n${i}`, data: 'x'.repeat(5000) });
  detach();
  const later = new FakeStream();
  dc.attach(app.id, later);
  const ids = later.logIds();
  assert.equal(ids.length, 200);
  assert.equal(ids[199] - ids[0], 199);
  const last = JSON.parse(/data: (.*)$/m.exec(later.chunks[0].split('\n\n').slice(-2)[0])![1]) as { data: string };
  assert.ok(last.data.length <= 2001);
  dc.closeAll();
  assert.equal(later.ended, true);
});

test('a stream that stops reading is dropped instead of buffering without end', () => {
  const dc = makeConsole();
  const app = testApp();
  const slow = new FakeStream();
  const fast = new FakeStream();
  dc.attach(app.id, slow);
  dc.attach(app.id, fast);
  slow.writableLength = 10 * 1024 * 1024;
  dc.report(app.id, 'webhook', { detail: 'x' });
  assert.equal(slow.ended, true);
  assert.equal(fast.ended, false);
  assert.equal(fast.logIds().length, 1);
  dc.closeAll();
});
