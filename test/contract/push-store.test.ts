/**
 * The PushStore contract (server/push/PushStore.ts), run against SqlitePushStore and RedisPushStore:
 * devices and their indexes, keys, publishes, leases, at-most-once counting and durability.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { redisSpec } from '../../server/cluster/redis-connection';
import type { PublishRecord, PushStore } from '../../server/push/PushStore';
import { RedisPushStore } from '../../server/push/RedisPushStore';
import { SqlitePushStore } from '../../server/push/SqlitePushStore';
import { REDIS_URL, deleteKeys, needRedis, redisClient, uniquePrefix } from '../helpers/redis';

interface Harness {
  /** A fresh, open store; `reopen` closes it and opens another on the same data. */
  start(t: TestContext): Promise<{ store: PushStore; reopen(): Promise<PushStore> } | null>;
}

const sqlite: Harness = {
  async start(t) {
    const dir = mkdtempSync(join(tmpdir(), 'herald-push-store-'));
    const file = join(dir, 'push.sqlite');
    let store = new SqlitePushStore(file);
    await store.open();
    t.after(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return {
      store,
      async reopen() {
        await store.close();
        store = new SqlitePushStore(file);
        await store.open();
        return store;
      },
    };
  },
};

const redis: Harness = {
  async start(t) {
    if (!(await needRedis(t))) return null;
    const prefix = uniquePrefix();
    const make = () => new RedisPushStore({ spec: redisSpec(REDIS_URL), prefix, log: pino({ level: 'silent' }) });
    let store = make();
    await store.open();
    t.after(async () => {
      await store.close();
      await deleteKeys(prefix);
    });
    return {
      store,
      async reopen() {
        await store.close();
        store = make();
        await store.open();
        return store;
      },
    };
  },
};

const appId = () => `app${randomBytes(4).toString('hex')}`;
let n = 0;
const device = (interests?: string[], endpoint = `https://push.example.com/${++n}-${randomBytes(4).toString('hex')}`) => ({
  id: `web-${randomBytes(8).toString('hex')}`,
  endpoint,
  p256dh: 'BPp256dh',
  auth: 'authsecret',
  keyId: 'k1',
  now: 1000,
  ...(interests ? { interests } : {}),
});
const publish = (over: Partial<PublishRecord> = {}): PublishRecord => ({
  id: `pubid-${randomBytes(8).toString('hex')}`,
  kind: 'interests',
  targets: ['news'],
  payload: '{"data":{}}',
  ttl: 60,
  createdAt: 1000,
  deliverAt: 1000,
  expiresAt: 61000,
  ...over,
});

/** `count` new devices, registered with `store` under app `a`. */
async function registered(store: PushStore, a: string, count: number): Promise<ReturnType<typeof device>[]> {
  const devices = Array.from({ length: count }, () => device());
  for (const d of devices) await store.registerDevice(a, d);
  return devices;
}

function contract(name: string, h: Harness): void {
  void describe(`PushStore contract: ${name}`, () => {
    void test('one device per endpoint: registering again updates it and keeps its id', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const d = device(['news', 'sport']);
      const first = await s.store.registerDevice(a, d);
      assert.deepEqual(first, { deviceId: d.id, created: true });
      const again = await s.store.registerDevice(a, { ...d, id: 'web-other', p256dh: 'BPnew', keyId: 'k2', now: 2000 });
      assert.deepEqual(again, { deviceId: d.id, created: false });
      const rec = await s.store.device(a, d.id);
      assert.equal(rec?.p256dh, 'BPnew');
      assert.equal(rec?.keyId, 'k2');
      assert.equal(rec?.createdAt, 1000);
      assert.equal(rec?.updatedAt, 2000);
      assert.deepEqual(await s.store.interests(a, d.id), ['news', 'sport'], 'interests kept when not given');
      await s.store.registerDevice(a, { ...d, interests: ['weather'] });
      assert.deepEqual(await s.store.interests(a, d.id), ['weather']);
      assert.deepEqual(await s.store.devicesForInterests(a, ['news']), []);
      assert.equal(await s.store.device(appId(), d.id), null, 'apps are separate');
    });

    void test('interests: add, remove, replace, the limit, and the interest index', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const d1 = device(['a', 'b']);
      const d2 = device(['b', 'c']);
      await s.store.registerDevice(a, d1);
      await s.store.registerDevice(a, d2);
      assert.deepEqual((await s.store.devicesForInterests(a, ['a', 'b', 'c'])).sort(), [d1.id, d2.id].sort(), 'distinct devices');
      assert.equal(await s.store.addInterest(a, d1.id, 'c', 3), 'added');
      assert.equal(await s.store.addInterest(a, d1.id, 'c', 3), 'exists');
      assert.equal(await s.store.addInterest(a, d1.id, 'd', 3), 'full');
      assert.equal(await s.store.addInterest(a, 'web-missing', 'd', 3), 'missing');
      assert.equal(await s.store.removeInterest(a, d1.id, 'a'), true);
      assert.equal(await s.store.removeInterest(a, 'web-missing', 'a'), false);
      assert.deepEqual(await s.store.interests(a, d1.id), ['b', 'c']);
      assert.deepEqual(await s.store.devicesForInterests(a, ['a']), []);
      assert.equal(await s.store.setInterests(a, d2.id, ['z']), true);
      assert.equal(await s.store.setInterests(a, 'web-missing', ['z']), false);
      assert.deepEqual(await s.store.devicesForInterests(a, ['b']), [d1.id]);
      assert.deepEqual(await s.store.devicesForInterests(a, ['z']), [d2.id]);
      assert.equal(await s.store.interests(a, 'web-missing'), null);
    });

    void test('users: bind once, conflict for another user, delete a user with all its devices', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const d1 = device(['news']);
      const d2 = device(['news']);
      await s.store.registerDevice(a, d1);
      await s.store.registerDevice(a, d2);
      assert.equal(await s.store.setUser(a, d1.id, 'alice'), 'ok');
      assert.equal(await s.store.setUser(a, d1.id, 'alice'), 'ok');
      assert.equal(await s.store.setUser(a, d1.id, 'bob'), 'conflict');
      assert.equal(await s.store.setUser(a, 'web-missing', 'bob'), 'missing');
      assert.equal(await s.store.setUser(a, d2.id, 'alice'), 'ok');
      assert.deepEqual((await s.store.devicesForUsers(a, ['alice', 'nobody'])).sort(), [d1.id, d2.id].sort());
      assert.equal(await s.store.deleteUser(a, 'alice'), 2);
      assert.equal(await s.store.device(a, d1.id), null);
      assert.deepEqual(await s.store.devicesForInterests(a, ['news']), []);
      assert.deepEqual(await s.store.devicesForUsers(a, ['alice']), []);
      // The endpoint is free again: registering it makes a new device.
      assert.equal((await s.store.registerDevice(a, { ...d1, id: 'web-new' })).deviceId, 'web-new');
    });

    void test('deleting a device removes it from every index', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const d = device(['x', 'y']);
      await s.store.registerDevice(a, d);
      await s.store.setUser(a, d.id, 'u');
      assert.equal(await s.store.deleteDevice(a, d.id), true);
      assert.equal(await s.store.deleteDevice(a, d.id), false);
      assert.deepEqual(await s.store.devicesForInterests(a, ['x', 'y']), []);
      assert.deepEqual(await s.store.devicesForUsers(a, ['u']), []);
    });

    void test('VAPID keys: the first init wins, a rotation keeps the old key', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const key = (id: string, createdAt: number) => ({ id, publicKey: `pub-${id}`, privateKey: `priv-${id}`, createdAt });
      await Promise.all([s.store.initVapidKey(a, key('k1', 1)), s.store.initVapidKey(a, key('k2', 2))]);
      const keys = await s.store.vapidKeys(a);
      assert.equal(keys.length, 1, 'only one racer stored its key');
      assert.equal(keys[0].current, true);
      await s.store.initVapidKey(a, key('k3', 3));
      assert.equal((await s.store.vapidKeys(a)).length, 1);
      await s.store.useVapidKey(a, key('k4', 4));
      const after = await s.store.vapidKeys(a);
      assert.deepEqual(after.map((k) => [k.id, k.current]), [[keys[0].id, false], ['k4', true]]);
      assert.equal(after[1].privateKey, 'priv-k4');
    });

    void test('a publish with its audience: claim, lease, results counted once, done', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const devices = await registered(s.store, a, 4);
      const p = publish();
      await s.store.createPublish(a, p, { deviceIds: [...devices.map((d) => d.id), devices[0].id], skippedOnline: 2 });
      let st = await s.store.publish(a, p.id);
      assert.deepEqual({ ...st, payload: undefined }, { ...p, payload: undefined, status: 'delivering', targeted: 6, sent: 0, skippedOnline: 2, expired: 0, failed: 0, pending: 4, delivered: 0, opened: 0 });
      assert.equal(await s.store.nextDueAt(a), 1000);

      const claimed = await s.store.claimDeliveries(a, 1000, 3, 5000);
      assert.equal(claimed.length, 3);
      assert.equal(claimed[0].attempts, 0);
      assert.equal(claimed[0].device?.endpoint, devices.find((d) => d.id === claimed[0].deviceId)?.endpoint);
      const rest = await s.store.claimDeliveries(a, 1000, 10, 5000);
      assert.equal(rest.length, 1, 'leased rows are not handed out again');
      assert.equal((await s.store.claimDeliveries(a, 4999, 10, 9000)).length, 0);

      const [r1, r2, r3] = claimed;
      await s.store.finishDeliveries(a, [
        { publishId: p.id, deviceId: r1.deviceId, outcome: 'sent' },
        { publishId: p.id, deviceId: r2.deviceId, outcome: 'retry', nextAt: 2000 },
        { publishId: p.id, deviceId: r3.deviceId, outcome: 'expired' },
      ], 1500);
      // The same result again (a lease that expired and was sent twice) does not count twice.
      await s.store.finishDeliveries(a, [{ publishId: p.id, deviceId: r1.deviceId, outcome: 'sent' }], 1500);
      st = await s.store.publish(a, p.id);
      assert.deepEqual([st?.sent, st?.expired, st?.pending, st?.status], [1, 1, 2, 'delivering']);

      const retried = await s.store.claimDeliveries(a, 2000, 10, 6000);
      assert.deepEqual(retried.map((r) => [r.deviceId, r.attempts]), [[r2.deviceId, 1]]);
      await s.store.finishDeliveries(a, [
        { publishId: p.id, deviceId: r2.deviceId, outcome: 'gone' },
        { publishId: p.id, deviceId: rest[0].deviceId, outcome: 'failed' },
      ], 2500);
      st = await s.store.publish(a, p.id);
      assert.deepEqual([st?.sent, st?.failed, st?.expired, st?.pending, st?.status], [1, 2, 1, 0, 'done']);
      assert.equal(await s.store.device(a, r2.deviceId), null, 'gone deletes the device');
      assert.equal(await s.store.nextDueAt(a), null);
    });

    void test('one batch over two publishes: each row gets its own device, every result counts once', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const devices = await registered(s.store, a, 4);
      const [p, q] = [publish(), publish()];
      await s.store.createPublish(a, p, { deviceIds: devices.map((d) => d.id), skippedOnline: 0 });
      await s.store.createPublish(a, q, { deviceIds: [devices[0].id, devices[1].id], skippedOnline: 0 });
      await s.store.deleteDevice(a, devices[3].id);

      const rows = await s.store.claimDeliveries(a, 1000, 10, 5000);
      assert.equal(rows.length, 6);
      for (const r of rows) {
        const d = devices.find((x) => x.id === r.deviceId);
        assert.ok(d, 'a claimed row names a device of the audience');
        if (d === devices[3]) assert.equal(r.device, null, 'a deleted device is claimed as null among the others');
        else assert.deepEqual([r.device?.id, r.device?.endpoint], [d.id, d.endpoint], 'each row carries its own device');
      }

      const outcomeOf = (pub: string, dev: string): 'sent' | 'failed' | 'expired' | 'gone' =>
        dev === devices[3].id ? 'failed' : pub === q.id ? 'expired' : dev === devices[2].id ? 'gone' : 'sent';
      const results = rows.map((r) => ({ publishId: r.publishId, deviceId: r.deviceId, outcome: outcomeOf(r.publishId, r.deviceId) }));
      // The same result twice in one batch (a row sent again after its lease ended) still counts once.
      await s.store.finishDeliveries(a, [...results, results[0]], 1500);
      const ps = await s.store.publish(a, p.id);
      const qs = await s.store.publish(a, q.id);
      assert.deepEqual([ps?.sent, ps?.failed, ps?.expired, ps?.pending, ps?.status], [2, 2, 0, 0, 'done']);
      assert.deepEqual([qs?.sent, qs?.failed, qs?.expired, qs?.pending, qs?.status], [0, 0, 2, 0, 'done']);
      assert.equal(await s.store.device(a, devices[2].id), null, 'gone deletes the device');
      assert.equal((await s.store.claimDeliveries(a, 99999, 10, 999999)).length, 0);
    });

    void test('a lease that ends makes the row due again; release makes it due at once', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const d = device();
      await s.store.registerDevice(a, d);
      const p = publish();
      await s.store.createPublish(a, p, { deviceIds: [d.id], skippedOnline: 0 });
      assert.equal((await s.store.claimDeliveries(a, 1000, 10, 31000)).length, 1);
      assert.equal(await s.store.nextDueAt(a), 31000, 'due again when the lease ends');
      const again = await s.store.claimDeliveries(a, 31000, 10, 61000);
      assert.equal(again.length, 1, 'a dead claimant\'s row is taken again');
      await s.store.releaseDeliveries(a, [{ publishId: p.id, deviceId: d.id }], 32000);
      const third = await s.store.claimDeliveries(a, 32000, 10, 62000);
      assert.deepEqual(third.map((r) => r.attempts), [0], 'release is not an attempt');
      await s.store.finishDeliveries(a, [{ publishId: p.id, deviceId: d.id, outcome: 'sent' }], 33000);
      await s.store.releaseDeliveries(a, [{ publishId: p.id, deviceId: d.id }], 34000);
      assert.equal((await s.store.claimDeliveries(a, 99999, 10, 999999)).length, 0, 'a finished row never comes back');
    });

    void test('a deleted device is claimed with device null; an empty audience is done at once', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const d = device();
      await s.store.registerDevice(a, d);
      const p = publish();
      await s.store.createPublish(a, p, { deviceIds: [d.id], skippedOnline: 0 });
      await s.store.deleteDevice(a, d.id);
      const [row] = await s.store.claimDeliveries(a, 1000, 10, 2000);
      assert.equal(row.device, null);
      const empty = publish();
      await s.store.createPublish(a, empty, { deviceIds: [], skippedOnline: 3 });
      const st = await s.store.publish(a, empty.id);
      assert.deepEqual([st?.status, st?.targeted, st?.skippedOnline, st?.pending], ['done', 3, 3, 0]);
    });

    void test('scheduled publishes: claimed when due, expanded once, then delivered', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const d1 = device();
      const d2 = device();
      await s.store.registerDevice(a, d1);
      await s.store.registerDevice(a, d2);
      const p = publish({ deliverAt: 5000, expiresAt: 65000 });
      await s.store.createPublish(a, p, null);
      assert.equal((await s.store.publish(a, p.id))?.status, 'scheduled');
      assert.equal(await s.store.nextDueAt(a), 5000);
      assert.equal((await s.store.claimScheduled(a, 4999, 10, 9999)).length, 0);
      assert.equal((await s.store.claimDeliveries(a, 5000, 10, 9999)).length, 0);
      const [due] = await s.store.claimScheduled(a, 5000, 10, 65000);
      assert.equal(due.id, p.id);
      assert.equal(due.payload, p.payload);
      assert.equal((await s.store.claimScheduled(a, 5000, 10, 65000)).length, 0, 'leased');
      await s.store.expandPublish(a, p.id, [d1.id, d2.id, d1.id], 5000);
      await s.store.expandPublish(a, p.id, [d1.id, d2.id], 5000);
      const st = await s.store.publish(a, p.id);
      assert.deepEqual([st?.status, st?.targeted, st?.pending], ['delivering', 2, 2]);
      assert.equal((await s.store.claimDeliveries(a, 5000, 10, 9999)).length, 2);
      assert.equal((await s.store.claimScheduled(a, 70000, 10, 99999)).length, 0, 'no longer scheduled');
    });

    void test('everything survives closing and opening the store again', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const d = device(['news']);
      await s.store.registerDevice(a, d);
      await s.store.initVapidKey(a, { id: 'k1', publicKey: 'pub', privateKey: 'priv', createdAt: 1 });
      const p = publish();
      await s.store.createPublish(a, p, { deviceIds: [d.id], skippedOnline: 0 });
      const later = publish({ deliverAt: 9000 });
      await s.store.createPublish(a, later, null);
      const store = await s.reopen();
      assert.deepEqual(await store.devicesForInterests(a, ['news']), [d.id]);
      assert.equal((await store.vapidKeys(a))[0].privateKey, 'priv');
      assert.equal((await store.publish(a, p.id))?.pending, 1);
      assert.equal((await store.claimDeliveries(a, 1000, 10, 2000)).length, 1);
      assert.equal((await store.claimScheduled(a, 9000, 10, 20000))[0]?.id, later.id);
    });

    void test('a renewed subscription keeps the device, its interests and user; the old endpoint no longer names it', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const d = device(['news']);
      const other = device();
      await s.store.registerDevice(a, d);
      await s.store.registerDevice(a, other);
      assert.equal(await s.store.setUser(a, d.id, 'u1'), 'ok');
      const renewed = { endpoint: `https://push.example.com/renewed-${randomBytes(4).toString('hex')}`, p256dh: 'BPnew', auth: 'newauth', keyId: 'k2', now: 5000 };
      assert.equal(await s.store.renewSubscription(a, d.id, other.endpoint, renewed), 'missing', 'not its endpoint');
      assert.equal(await s.store.renewSubscription(a, d.id, d.endpoint, renewed), 'ok');
      const rec = await s.store.device(a, d.id);
      assert.deepEqual(
        [rec?.endpoint, rec?.p256dh, rec?.auth, rec?.keyId, rec?.createdAt, rec?.updatedAt, rec?.userId],
        [renewed.endpoint, 'BPnew', 'newauth', 'k2', 1000, 5000, 'u1'],
      );
      assert.deepEqual(await s.store.interests(a, d.id), ['news']);
      assert.deepEqual(await s.store.devicesForInterests(a, ['news']), [d.id]);
      assert.deepEqual(await s.store.devicesForUsers(a, ['u1']), [d.id]);
      assert.equal(await s.store.renewSubscription(a, d.id, renewed.endpoint, renewed), 'ok', 'again, to the same endpoint');
      assert.equal(await s.store.renewSubscription(a, d.id, renewed.endpoint, { ...renewed, endpoint: other.endpoint }), 'conflict');
      assert.equal((await s.store.device(a, d.id))?.endpoint, renewed.endpoint, 'a conflict changes nothing');
      assert.equal(await s.store.renewSubscription(a, 'web-missing', d.endpoint, renewed), 'missing');
      // The new endpoint names the device; the old one is free for a new device.
      assert.deepEqual(await s.store.registerDevice(a, { ...device(), endpoint: renewed.endpoint, now: 6000 }), { deviceId: d.id, created: false });
      const fresh = { ...device(), endpoint: d.endpoint, now: 6000 };
      assert.deepEqual(await s.store.registerDevice(a, fresh), { deviceId: fresh.id, created: true });
      // The renewal counts as a registration for idle pruning: only `other` (registered at 1000) is idle.
      assert.deepEqual(await s.store.pruneIdleDevices(a, 4000, 10), [other.id]);
    });

    void test('reports: once per device and publish, opened counts as delivered too, only devices the publish targeted', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const [d1, d2, other] = [device(), device(), device()];
      for (const d of [d1, d2, other]) await s.store.registerDevice(a, d);
      const p = publish();
      await s.store.createPublish(a, p, { deviceIds: [d1.id, d2.id], skippedOnline: 0 });
      // A worker may report before the send is recorded (the push service answers after delivering): the
      // row is still pending, and the report counts.
      assert.equal(await s.store.recordReport(a, p.id, d1.endpoint, 'delivered'), 1, 'delivered counted');
      assert.equal(await s.store.recordReport(a, p.id, d1.endpoint, 'delivered'), 0, 'a repeat');
      assert.equal(await s.store.recordReport(a, p.id, d1.endpoint, 'opened'), 2, 'opened counted');
      assert.equal(await s.store.recordReport(a, p.id, d1.endpoint, 'opened'), 0);
      assert.equal(await s.store.recordReport(a, p.id, d2.endpoint, 'opened'), 3, 'a click whose delivered report was lost counts both');
      assert.equal(await s.store.recordReport(a, p.id, d2.endpoint, 'delivered'), 0);
      assert.equal(await s.store.recordReport(a, p.id, other.endpoint, 'delivered'), null, 'not targeted');
      assert.equal(await s.store.recordReport(a, p.id, 'https://push.example.com/nobody', 'delivered'), null);
      assert.equal(await s.store.recordReport(a, 'pubid-none', d1.endpoint, 'delivered'), null);
      assert.equal(await s.store.recordReport(appId(), p.id, d1.endpoint, 'delivered'), null, 'apps are separate');
      let st = await s.store.publish(a, p.id);
      assert.deepEqual([st?.delivered, st?.opened, st?.sent, st?.pending], [2, 2, 0, 2]);

      const rows = await s.store.claimDeliveries(a, 1000, 10, 5000);
      await s.store.finishDeliveries(a, rows.map((r) => ({ publishId: r.publishId, deviceId: r.deviceId, outcome: 'sent' as const })), 2000);
      const store = await s.reopen();
      st = await store.publish(a, p.id);
      assert.deepEqual([st?.status, st?.sent, st?.delivered, st?.opened], ['done', 2, 2, 2], 'kept through the sends and a reopen');
      assert.equal(await store.recordReport(a, p.id, d1.endpoint, 'opened'), 0);
      await store.prune(a, 3000);
      assert.equal(await store.recordReport(a, p.id, d1.endpoint, 'opened'), null, 'pruned with its publish');
    });

    void test('a 10 000-device publish is stored in one go and claimed in batches', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const ids = Array.from({ length: 10000 }, (_v, i) => `web-${i}`);
      const p = publish();
      const started = Date.now();
      await s.store.createPublish(a, p, { deviceIds: ids, skippedOnline: 0 });
      const storedMs = Date.now() - started;
      let claimed = 0;
      for (;;) {
        const rows = await s.store.claimDeliveries(a, 1000, 500, 100000);
        if (rows.length === 0) break;
        claimed += rows.length;
        await s.store.finishDeliveries(a, rows.map((r) => ({ publishId: r.publishId, deviceId: r.deviceId, outcome: 'sent' as const })), 2000);
      }
      assert.equal(claimed, 10000);
      const st = await s.store.publish(a, p.id);
      assert.deepEqual([st?.sent, st?.pending, st?.status], [10000, 0, 'done']);
      t.diagnostic(`${name}: stored 10 000 rows in ${storedMs} ms, claimed and finished them in ${Date.now() - started - storedMs} ms`);
      await s.store.prune(a, 3000);
      assert.equal(await s.store.publish(a, p.id), null, 'pruned');
    });

    void test('idle devices: those not registered again since a time go, with their interests and user link', async (t) => {
      const s = await h.start(t);
      if (!s) return;
      const a = appId();
      const old1 = { ...device(['news']), now: 1000 };
      const old2 = { ...device(['news', 'sport']), now: 1500 };
      const fresh = { ...device(['news']), now: 5000 };
      const renewed = { ...device(['sport']), now: 1000 };
      const signedIn = { ...device(['news']), now: 1000 };
      for (const d of [old1, old2, fresh, renewed, signedIn]) await s.store.registerDevice(a, d);
      // Registering again (the SDK's register() on a later visit) makes a device current; so does signing in.
      await s.store.registerDevice(a, { ...renewed, now: 6000 });
      assert.equal(await s.store.setUser(a, signedIn.id, 'alice'), 'ok');
      const first = await s.store.pruneIdleDevices(a, 4000, 1);
      const rest = await s.store.pruneIdleDevices(a, 4000, 10);
      assert.equal(first.length, 1, 'the limit holds');
      assert.deepEqual([...first, ...rest].sort(), [old1.id, old2.id].sort());
      assert.deepEqual(await s.store.pruneIdleDevices(a, 4000, 10), [], 'nothing left to prune');
      for (const d of [old1, old2]) assert.equal(await s.store.device(a, d.id), null);
      for (const d of [fresh, renewed, signedIn]) assert.equal((await s.store.device(a, d.id))?.id, d.id);
      assert.deepEqual((await s.store.devicesForInterests(a, ['news', 'sport'])).sort(), [fresh.id, renewed.id, signedIn.id].sort());
      // Its endpoint is free again: registering it makes a new device.
      assert.deepEqual(await s.store.registerDevice(a, { ...old1, id: 'web-again', now: 7000 }), { deviceId: 'web-again', created: true });
      assert.deepEqual(await s.store.pruneIdleDevices(appId(), Date.now() + 60_000, 10), [], 'apps are separate');
      // Later, everything is idle: the signed-in device goes with its user link.
      const all = await s.store.pruneIdleDevices(a, Date.now() + 60_000, 10);
      assert.deepEqual(all.sort(), [fresh.id, renewed.id, signedIn.id, 'web-again'].sort());
      assert.deepEqual(await s.store.devicesForUsers(a, ['alice']), []);
      assert.deepEqual(await s.store.devicesForInterests(a, ['news', 'sport']), []);
    });
  });
}

contract('sqlite', sqlite);
contract('redis', redis);

void test('sqlite: reopening releases the leases of the previous run at once', async (t) => {
  const s = await sqlite.start(t);
  if (!s) return;
  const a = appId();
  const p = publish();
  await s.store.createPublish(a, p, { deviceIds: ['web-1'], skippedOnline: 0 });
  const leaseUntil = Date.now() + 3_600_000;
  assert.equal((await s.store.claimDeliveries(a, Date.now(), 10, leaseUntil)).length, 1);
  const store = await s.reopen();
  assert.equal((await store.claimDeliveries(a, Date.now(), 10, leaseUntil)).length, 1);
});

void test('sqlite: a file written before reports existed gets their columns at open', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-push-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'push.sqlite');
  const a = appId();
  const d = device();
  const p = publish();
  const first = new SqlitePushStore(file);
  await first.open();
  await first.registerDevice(a, d);
  await first.createPublish(a, p, { deviceIds: [d.id], skippedOnline: 0 });
  await first.close();
  // As an older Herald left the file: the tables without the report columns.
  const raw = new Database(file);
  for (const [table, column] of [['publishes', 'delivered'], ['publishes', 'opened'], ['deliveries', 'reported']]) raw.exec(`ALTER TABLE ${table} DROP COLUMN ${column}`);
  raw.close();
  const store = new SqlitePushStore(file);
  await store.open();
  t.after(() => store.close());
  assert.equal(await store.recordReport(a, p.id, d.endpoint, 'opened'), 3);
  const st = await store.publish(a, p.id);
  assert.deepEqual([st?.pending, st?.delivered, st?.opened], [1, 1, 1]);
});

void test('sqlite: a second process on the same file is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-push-lock-'));
  const file = join(dir, 'push.sqlite');
  const first = new SqlitePushStore(file);
  await first.open();
  t.after(async () => {
    await first.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const { spawnSync } = await import('node:child_process');
  const script = `const { SqlitePushStore } = require(${JSON.stringify(join(__dirname, '..', '..', 'server', 'push', 'SqlitePushStore.js'))});
    new SqlitePushStore(${JSON.stringify(file)}).open().then(() => process.exit(0), (e) => { console.error(e.message); process.exit(3); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /in use by another Herald process/);
});

/** A RedisPushStore of its own prefix and a plain client to look at its keys; null without Redis (outside CI). */
async function redisStoreWithClient(t: TestContext): Promise<{ store: RedisPushStore; raw: ReturnType<typeof redisClient>; prefix: string } | null> {
  if (!(await needRedis(t))) return null;
  const prefix = uniquePrefix();
  const store = new RedisPushStore({ spec: redisSpec(REDIS_URL), prefix, log: pino({ level: 'silent' }) });
  await store.open();
  const raw = redisClient();
  t.after(async () => {
    await store.close();
    await deleteKeys(prefix);
    await raw.quit();
  });
  return { store, raw, prefix };
}

void test('redis: devices stored before the idle index existed are still pruned', async (t) => {
  const r = await redisStoreWithClient(t);
  if (!r) return;
  const { store, raw, prefix } = r;
  const a = appId();
  const old = { ...device(['news']), now: 1000 };
  const fresh = { ...device(['news']), now: 9000 };
  await store.registerDevice(a, old);
  await store.registerDevice(a, fresh);
  // As an older Herald left them: no `seen` index at all.
  await raw.del(`${prefix}push:{${a}}:seen`);
  assert.deepEqual(await store.pruneIdleDevices(a, 5000, 10), [old.id]);
  assert.equal(await store.device(a, old.id), null);
  assert.equal((await store.device(a, fresh.id))?.id, fresh.id);
  assert.equal(await raw.exists(`${prefix}push:{${a}}:seen:v1`), 1, 'indexed once');
});

void test('redis: pruning a publish deletes its reports with it', async (t) => {
  const r = await redisStoreWithClient(t);
  if (!r) return;
  const { store, raw, prefix } = r;
  const a = appId();
  const d = device();
  const p = publish();
  await store.registerDevice(a, d);
  await store.createPublish(a, p, { deviceIds: [d.id], skippedOnline: 0 });
  assert.equal(await store.recordReport(a, p.id, d.endpoint, 'delivered'), 1);
  const reports = `${prefix}push:{${a}}:rep:${p.id}`;
  assert.equal(await raw.exists(reports), 1);
  const [row] = await store.claimDeliveries(a, 1000, 10, 5000);
  await store.finishDeliveries(a, [{ publishId: row.publishId, deviceId: row.deviceId, outcome: 'sent' }], 2000);
  await store.prune(a, 3000);
  assert.equal(await raw.exists(reports), 0);
});
