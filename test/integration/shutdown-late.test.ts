/**
 * stop() must release everything that keeps the process alive even when a shutdown step runs late. A
 * backend that stops answering (a broker gone mid-command) is injected by wrapping the real LocalState so
 * that removing a subscriber never settles; the sockets' teardown then outlives the grace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalState } from '../../server/state/LocalState';
import { RawClient } from '../helpers/clients';
import { startHerald } from '../helpers/herald';

class StuckState extends LocalState {
  override removeSubscriber(): never {
    // A promise that never settles, as a command to a broker that vanished would.
    return new Promise(() => undefined) as never;
  }
}

void test('a late drain still closes the listener, and stop() returns within the grace', { timeout: 30_000 }, async (t) => {
  const h = await startHerald({ options: { shutdownGraceMs: 1000 }, backends: { state: new StuckState() } });
  const clients: RawClient[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await RawClient.connect(h);
    c.send({ event: 'pusher:subscribe', data: { channel: `late-${i}` } });
    await c.next('pusher_internal:subscription_succeeded', 5000, `late-${i}`);
    clients.push(c);
  }
  t.after(() => clients.forEach((c) => c.close()));

  const started = Date.now();
  await h.stop();
  const took = Date.now() - started;
  assert.ok(took < 1000 + 3000, `stop() took ${took} ms`);
  assert.equal(h.server.http.server.listening, false, 'the listener is closed even though the drain ran late');
});
