/**
 * Web Push test helpers: push options for a test node, signed calls to the publish API, device API calls
 * as a browser makes them, and a device registered against a FakePushService subscription.
 */
import type { PublishStatus } from '../../server/push/PushStore';
import type { AppOptions, HeraldOptions, PushOptions } from '../../server/options/Options';
import type { FakePushService, FakeSubscription } from './FakePushService';
import type { TestHerald } from './herald';
import { signedFetch } from './clients';
import { waitFor } from './redis';

export const PUSH_SUBJECT = 'mailto:ops@herald.example.com';

/** Node options with push on for every app, endpoints on 127.0.0.1 allowed. */
export function pushOptions(extra: PushOptions = {}): Partial<HeraldOptions> {
  return { push: { subject: PUSH_SUBJECT, allowInsecureEndpoints: true, deviceRequestsPerIpPerSecond: -1, ...extra } };
}

export interface JsonResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

async function json<T>(res: Response): Promise<JsonResponse<T>> {
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T, headers: res.headers };
}

/** A request to `/apps/:appId<path>` signed like the REST API (what the server SDKs do). */
export async function signed<T = Record<string, unknown>>(h: TestHerald, method: string, path: string, body?: unknown, app: AppOptions = h.app): Promise<JsonResponse<T>> {
  const text = body === undefined ? '' : JSON.stringify(body);
  return json<T>(await signedFetch(h, method, `/apps/${app.id}${path}`, text || null, {}, app));
}

/** A device API call as a browser page makes it. */
export async function deviceApi<T = Record<string, unknown>>(
  h: TestHerald,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  appKey: string = h.app.key,
): Promise<JsonResponse<T>> {
  const res = await fetch(`${h.baseUrl}/push/v1/${appKey}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return json<T>(res);
}

/** Subscribes at the fake with the app's VAPID key and registers the device, like the browser SDK. */
export async function registerDevice(h: TestHerald, fake: FakePushService, interests: string[], app: AppOptions = h.app): Promise<{ deviceId: string; sub: FakeSubscription }> {
  const key = await deviceApi<{ vapidPublicKey: string }>(h, 'GET', '/vapid-public-key', undefined, {}, app.key);
  if (key.status !== 200) throw new Error(`vapid-public-key: ${key.status} ${JSON.stringify(key.body)}`);
  const sub = fake.createSubscription(key.body.vapidPublicKey);
  const r = await deviceApi<{ deviceId: string }>(h, 'POST', '/devices', { subscription: { endpoint: sub.endpoint, keys: sub.keys }, interests }, {}, app.key);
  if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
  return { deviceId: r.body.deviceId, sub };
}

/** What `GET /push/publishes/:id` answers: the store's counts, under the API's `publishId`. */
export type PublishCounts = Pick<PublishStatus, 'status' | 'targeted' | 'sent' | 'skippedOnline' | 'expired' | 'failed' | 'pending' | 'delivered' | 'opened'> & { publishId: string };

/** The publish's status once `done(status)` holds (polls the status API). */
export async function publishStatus(h: TestHerald, publishId: string, done: (s: PublishCounts) => boolean = (s) => s.status === 'done', timeoutMs = 10000): Promise<PublishCounts> {
  let last: PublishCounts | null = null;
  try {
    return await waitFor(
      async () => {
        const r = await signed<PublishCounts>(h, 'GET', `/push/publishes/${publishId}`);
        last = r.body;
        return r.status === 200 && done(r.body) ? r.body : null;
      },
      timeoutMs,
      `publish ${publishId}`,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status ${JSON.stringify(last)}`);
  }
}
