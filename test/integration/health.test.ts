import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from '../helpers/herald';
import { RawClient } from '../helpers/clients';
import { LocalState } from '../../server/state/LocalState';

interface Ready {
  ready: boolean;
  reasons: string[];
  memory: { basis: string; percent: number; over: boolean };
}

/** Local state whose health and connection teardown a test controls (Redis down, a slow drain). */
class ControlledState extends LocalState {
  up = true;
  private release: () => void = () => undefined;
  private gate: Promise<void> | null = null;
  override healthy(): boolean {
    return this.up;
  }
  holdRemovals(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }
  releaseRemovals(): void {
    this.release();
  }
  override async removeConnection(appId: string): Promise<void> {
    if (this.gate) await this.gate;
    return super.removeConnection(appId);
  }
}

test('/health and / say the process is alive; /ready says it takes traffic', async (t) => {
  const h = await startHerald();
  t.after(() => h.stop());
  for (const path of ['/', '/health']) {
    const res = await fetch(`${h.baseUrl}${path}`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
  }
  const res = await fetch(`${h.baseUrl}/ready`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as Ready;
  assert.equal(body.ready, true);
  assert.deepEqual(body.reasons, []);
  assert.equal(body.memory.basis, 'heap');
});

test('/ready is 503 over the memory threshold', async (t) => {
  // A 1 MB budget: any Node process is over it.
  const h = await startHerald({ options: { memoryLimitBytes: 1024 * 1024, memoryThresholdPercent: 90 } });
  t.after(() => h.stop());
  const res = await fetch(`${h.baseUrl}/ready`);
  assert.equal(res.status, 503);
  const body = (await res.json()) as Ready;
  assert.deepEqual(body.reasons, ['memory']);
  assert.equal(body.memory.basis, 'rss');
  assert.ok(body.memory.percent > 100);
});

test('/ready is 503 while the shared state (Redis in cluster mode) is down, and recovers', async (t) => {
  const state = new ControlledState();
  const h = await startHerald({ backends: { state } });
  t.after(() => h.stop());
  state.up = false;
  const down = await fetch(`${h.baseUrl}/ready`);
  assert.equal(down.status, 503);
  assert.deepEqual(((await down.json()) as Ready).reasons, ['state']);
  state.up = true;
  assert.equal((await fetch(`${h.baseUrl}/ready`)).status, 200);
});

test('/ready is 503 while draining', async (t) => {
  const state = new ControlledState();
  const h = await startHerald({ backends: { state } });
  t.after(() => h.stop());
  const c = await RawClient.connect(h);
  state.holdRemovals();
  const stopped = h.server.stop();
  const closed = await c.closed;
  assert.equal(closed.code, 4200);
  // The drain waits on the held teardown, so the server is still up and draining.
  const res = await h.server.http.inject({ method: 'GET', url: '/ready' });
  assert.equal(res.statusCode, 503);
  assert.deepEqual((res.json() as Ready).reasons, ['draining']);
  state.releaseRemovals();
  await stopped;
});
