/**
 * Seeded random calls to the push device API (as browsers make them: register, interests, user binding,
 * renewed subscriptions, reports, deletes) and the signed publish API, on the SQLite store of one node and on
 * the Redis store. The test keeps a model of the devices built only from the server's own 2xx answers, then
 * checks that the server agrees with what it said:
 * - no 500; every error is a status from the table with a JSON `error`;
 * - one endpoint is one device (201 only for a new endpoint, the same id after that);
 * - a 404 only for a device the model does not hold, a 409 only for a real conflict;
 * - each device's interests read back as the model has them, during the storm and after it;
 * - a publish to an interest or a user targets exactly the devices the model says hold it: the indexes the
 *   store keeps for publishing agree with the devices themselves after every kind of change.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { signPushToken } from '../../server/push/push-token';
import { FakePushService, type FakeSubscription } from '../helpers/FakePushService';
import { Pick, checkAnswer, fuzzSeed, oddValue } from '../helpers/fuzz';
import { startHerald, type TestHerald } from '../helpers/herald';
import { deviceApi, publishStatus, pushOptions, signed, type JsonResponse } from '../helpers/push';
import { REDIS_URL, deleteKeys, needRedis, uniquePrefix } from '../helpers/redis';

const CALLS = 1200;
const SUBSCRIPTIONS = 24;

const VALID_INTERESTS = ['news', 'sport', 'a=b@c,d.e;f_g-h', 'i'.repeat(164), '__proto__', 'constructor', 'hasOwnProperty'];
const INTERESTS = [...VALID_INTERESTS, '', 'bad name', 'i'.repeat(165), 'é', '#x', 'a/b'];
const VALID_USERS = ['alice', 'bob', '__proto__', 'u'.repeat(164)];
const ODD_DEVICE_IDS = ['web-00000000-0000-0000-0000-000000000000', 'web-unknown', 'x', '__proto__', 'w'.repeat(200), '..'];
const WORDS: unknown[] = [...INTERESTS, ...VALID_USERS, ...ODD_DEVICE_IDS, 'https://push.example.com/x'];

/**
 * Calls by kind (the switch below), weighted so devices pile up: registrations and interest changes often,
 * deletes now and then, deleting a whole user rarely.
 */
const OPS = [8, 6, 4, 4, 4, 2, 4, 4, 4, 4, 1].flatMap((weight, kind) => Array<number>(weight).fill(kind));

interface ModelDevice {
  endpoint: string;
  interests: Set<string>;
  user: string | null;
}

/** What the server said exists, from its 2xx answers alone. */
class Model {
  readonly devices = new Map<string, ModelDevice>();

  owner(endpoint: string): string | undefined {
    for (const [id, d] of this.devices) if (d.endpoint === endpoint) return id;
    return undefined;
  }

  withInterest(interest: string): number {
    return [...this.devices.values()].filter((d) => d.interests.has(interest)).length;
  }

  withUser(user: string): number {
    return [...this.devices.values()].filter((d) => d.user === user).length;
  }
}

function sorted(xs: Iterable<string>): string[] {
  return [...xs].sort();
}

/** Checks the shape every answer must have; returns it for the caller's own checks. */
function checked<T>(what: string, r: JsonResponse<T>): JsonResponse<T> {
  checkAnswer(what, r.status, r.body);
  return r;
}

async function storm(t: TestContext, h: TestHerald, fake: FakePushService): Promise<void> {
  const p = new Pick(fuzzSeed(t));
  const odd = (): unknown => oddValue(p, WORDS);
  const model = new Model();
  const key = (await deviceApi<{ vapidPublicKey: string }>(h, 'GET', '/vapid-public-key')).body.vapidPublicKey;
  const subs: FakeSubscription[] = Array.from({ length: SUBSCRIPTIONS }, () => fake.createSubscription(key));
  const subscription = (s: FakeSubscription): unknown => ({ endpoint: s.endpoint, keys: s.keys });
  const interestList = (): unknown => (p.chance(0.85) ? p.some(p.chance(0.8) ? VALID_INTERESTS : INTERESTS, 5) : odd());
  const deviceId = (): string => (model.devices.size > 0 && p.chance(0.85) ? p.one([...model.devices.keys()]) : p.one(ODD_DEVICE_IDS));
  const path = (id: string): string => `/devices/${encodeURIComponent(id)}`;
  const tally = new Map<string, number>();

  const publishIds: string[] = [];
  for (let i = 0; i < CALLS; i++) {
    const op = p.one(OPS);
    const id = deviceId();
    const known = model.devices.get(id);
    let what = '';
    let r: JsonResponse;
    switch (op) {
      case 0: {
        what = 'register';
        const s = p.one(subs);
        const body: Record<string, unknown> = { subscription: p.chance(0.9) ? subscription(s) : odd() };
        if (p.chance(0.6)) body.interests = interestList();
        r = checked(what, await deviceApi(h, 'POST', '/devices', p.chance(0.95) ? body : odd()));
        if (r.status < 300) {
          const got = String(r.body.deviceId);
          const before = model.owner(s.endpoint);
          assert.equal(r.status === 201, before === undefined, `register: 201 exactly for a new endpoint (${r.status})`);
          if (before !== undefined) assert.equal(got, before, 'register: a known endpoint keeps its device id');
          const d = model.devices.get(got) ?? { endpoint: s.endpoint, interests: new Set<string>(), user: null };
          if (Array.isArray(body.interests)) d.interests = new Set(body.interests as string[]);
          model.devices.set(got, d);
        }
        break;
      }
      case 3: {
        what = 'set interests';
        // An odd body can be a valid one too (`{"interests":[]}`): the model takes what was sent.
        const listed = interestList();
        const body = p.chance(0.9) ? { interests: listed } : odd();
        r = checked(what, await deviceApi(h, 'PUT', `${path(id)}/interests`, body));
        if (r.status < 300) {
          assert.ok(known, `set interests: 200 for ${id}, which the model does not hold`);
          const sent = new Set((body as { interests: string[] }).interests);
          assert.deepEqual(r.body.interests, sorted(sent), 'set interests answers the set it stored');
          known.interests = sent;
        }
        break;
      }
      case 1:
      case 2: {
        const interest = p.one(INTERESTS);
        const add = op === 1;
        what = `${add ? 'add' : 'remove'} interest`;
        r = checked(what, await deviceApi(h, add ? 'POST' : 'DELETE', `${path(id)}/interests/${encodeURIComponent(interest)}`));
        if (r.status < 300) {
          assert.ok(known, `${what}: 200 for ${id}, which the model does not hold`);
          if (add) known.interests.add(interest);
          else known.interests.delete(interest);
        }
        break;
      }
      case 4: {
        what = 'read interests';
        r = checked(what, await deviceApi(h, 'GET', `${path(id)}/interests`));
        if (known) assert.deepEqual(r.body.interests, sorted(known.interests), `read interests of ${id}`);
        else assert.equal(r.status, 404);
        break;
      }
      case 5: {
        what = 'delete device';
        r = checked(what, await deviceApi(h, 'DELETE', path(id)));
        if (r.status < 300) assert.ok(known, `delete: 200 for ${id}, which the model does not hold`);
        model.devices.delete(id);
        break;
      }
      case 6: {
        what = 'bind user';
        const user = p.one(VALID_USERS);
        const auth = p.chance(0.85) ? `Bearer ${signPushToken(p.chance(0.9) ? h.app.secret : 'wrong', user)}` : String(odd());
        r = checked(what, await deviceApi(h, 'PUT', `${path(id)}/user`, undefined, { authorization: auth }));
        if (r.status < 300) {
          assert.ok(known, `bind user: 200 for ${id}, which the model does not hold`);
          assert.ok(known.user === null || known.user === user, `bind user: ${known.user} became ${user} without a 409`);
          known.user = user;
        } else if (r.status === 409) {
          assert.ok(known && known.user !== null && known.user !== user, `bind user: 409 without another user bound (${known?.user})`);
        }
        break;
      }
      case 7: {
        what = 'renew subscription';
        const next = p.one(subs);
        const oldEndpoint = known && p.chance(0.8) ? known.endpoint : p.one(subs).endpoint;
        r = checked(what, await deviceApi(h, 'PUT', `${path(id)}/subscription`, p.chance(0.9) ? { oldEndpoint, subscription: subscription(next) } : odd()));
        const holder = model.owner(next.endpoint);
        if (r.status < 300) {
          assert.ok(known && known.endpoint === oldEndpoint, 'renew: 200 only for the device and the endpoint it holds');
          assert.ok(holder === undefined || holder === id, 'renew: 200 onto an endpoint another device holds');
          known.endpoint = next.endpoint;
        } else if (r.status === 409) {
          assert.ok(holder !== undefined && holder !== id, 'renew: 409 with no other device on that endpoint');
        }
        break;
      }
      case 8: {
        what = 'report';
        const report = { publishId: publishIds.length > 0 && p.chance(0.8) ? p.one(publishIds) : odd(), endpoint: p.one(subs).endpoint, report: p.one(['delivered', 'opened', odd()]) };
        r = checked(what, await deviceApi(h, 'POST', '/reports', p.chance(0.9) ? report : odd()));
        break;
      }
      case 9: {
        what = 'publish';
        const body = p.chance(0.7)
          ? { [p.chance(0.5) ? 'interests' : 'users']: p.some(p.chance(0.8) ? [...VALID_INTERESTS, ...VALID_USERS] : WORDS, 3), web: p.chance(0.8) ? { notification: { title: 't' } } : odd() }
          : odd();
        const route = p.chance(0.5) ? '/push/interests' : '/push/users';
        r = checked(what, await signed(h, 'POST', route, body));
        if (r.status === 202) publishIds.push(String(r.body.publishId));
        break;
      }
      case 10: {
        what = 'delete user';
        const user = p.one(VALID_USERS);
        r = checked(what, await signed(h, 'DELETE', `/push/users/${encodeURIComponent(user)}`));
        if (r.status < 300) {
          assert.equal(r.body.deletedDevices, model.withUser(user), `delete user ${user}: devices deleted`);
          for (const [deviceKey, d] of model.devices) if (d.user === user) model.devices.delete(deviceKey);
        }
        break;
      }
      default:
        throw new Error(`no call of kind ${op}`);
    }
    const k = `${what} ${r.status}`;
    tally.set(k, (tally.get(k) ?? 0) + 1);
  }
  t.diagnostic(`answers ${JSON.stringify(Object.fromEntries([...tally].sort()))}; devices left ${model.devices.size}`);
  for (const okAnswer of ['register 201', 'set interests 200', 'add interest 200', 'bind user 200', 'renew subscription 200', 'delete device 200']) {
    assert.ok((tally.get(okAnswer) ?? 0) > 0, `the storm reached ${okAnswer}`);
  }

  // Every device reads back as the model has it...
  for (const [id, d] of model.devices) {
    const r = await deviceApi(h, 'GET', `${path(id)}/interests`);
    assert.equal(r.status, 200, `${id} exists`);
    assert.deepEqual(r.body.interests, sorted(d.interests), `interests of ${id}`);
  }
  // ...and publishing finds exactly the devices that hold each interest and each user.
  for (const [kind, names, count] of [
    ['interests', VALID_INTERESTS, (n: string) => model.withInterest(n)],
    ['users', VALID_USERS, (n: string) => model.withUser(n)],
  ] as const) {
    for (const name of names) {
      const r = await signed<{ publishId: string }>(h, 'POST', `/push/${kind}`, { [kind]: [name], web: { notification: { title: 'check' } } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const st = await publishStatus(h, r.body.publishId);
      assert.equal(st.targeted, count(name), `devices targeted by ${kind} ${name}`);
    }
  }
}

async function withFake(t: TestContext): Promise<FakePushService> {
  const fake = await FakePushService.start();
  t.after(() => fake.close());
  return fake;
}

test('push fuzz: the device and publish APIs on the SQLite store agree with their own answers', async (t) => {
  const fake = await withFake(t);
  const h = await startHerald({ options: pushOptions() });
  t.after(() => h.stop());
  await storm(t, h, fake);
});

test('push fuzz: the device and publish APIs on the Redis store agree with their own answers', async (t) => {
  if (!(await needRedis(t))) return;
  const fake = await withFake(t);
  const prefix = uniquePrefix();
  const h = await startHerald({ options: { ...pushOptions(), redis: REDIS_URL, redisPrefix: prefix } });
  t.after(async () => {
    await h.stop();
    await deleteKeys(prefix);
  });
  await storm(t, h, fake);
});
