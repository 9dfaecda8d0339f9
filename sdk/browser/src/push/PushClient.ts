/**
 * Web Push registration against Herald's device API (push.md §1.5, Beams' web SDK flow): ask permission,
 * fetch the app's VAPID key, subscribe the service worker's push manager with it, register the
 * subscription as a device, remember the device id and tell Herald on the open connection (`herald:device`)
 * and on every later one (`device_id`), so Herald does not push a device that has a live connection.
 */
import { interestNameFault, MAX_INTEREST_LENGTH } from '../../../protocol';
import { DeviceStore } from './device-store';

export interface PushRegisterOptions {
  /** The worker script URL (e.g. `/herald-sw.js`), or a registration you made yourself. */
  serviceWorker: string | ServiceWorkerRegistration;
  /** Interests to start with. */
  interests?: string[];
}

/** Gives `setUser` a token from your server (`generatePushToken`); a string or `{ token }`. */
export type TokenProvider = () => Promise<string | { token: string }>;

/** A push step that failed; `status` is set when Herald answered. */
export class PushError extends Error {
  override readonly name = 'PushError';

  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * What herald-sw.js needs to report pushes (delivered, opened) and to move the device to a new subscription
 * when the browser replaces it (`pushsubscriptionchange`). Kept in Cache Storage, which the page and its
 * service worker share and which outlives a worker that the browser stopped.
 */
interface WorkerConfig {
  reportUrl: string;
  subscriptionUrl: string;
  endpoint: string;
}
const WORKER_CACHE = 'herald-push';
const WORKER_CONFIG = '/__herald/push-config';

/** Stores the worker's config; `null` forgets it. */
async function saveWorkerConfig(config: WorkerConfig | null): Promise<void> {
  if (typeof caches === 'undefined') return;
  try {
    const cache = await caches.open(WORKER_CACHE);
    if (config === null) await cache.delete(WORKER_CONFIG);
    else await cache.put(WORKER_CONFIG, new Response(JSON.stringify(config), { headers: { 'content-type': 'application/json' } }));
  } catch {
    // Cache Storage refused (a private window's quota, say): pushes still arrive, they are just not reported.
  }
}

export class PushClient {
  private readonly store: DeviceStore;

  constructor(
    appKey: string,
    /** `http(s)://host:port/push/v1/{key}`. */
    private readonly base: () => string,
    /** Called when the device id changed, so the connection can carry the new one; resolves once it does. */
    private readonly deviceChanged: () => Promise<void>,
  ) {
    this.store = new DeviceStore(appKey);
  }

  /** This browser's device id, or null before `register()`. */
  get deviceId(): string | null {
    return this.store.get();
  }

  /** True where Web Push can work: service workers, a push manager, notifications, a secure context. */
  static isSupported(): boolean {
    return typeof window !== 'undefined' && window.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  }

  /**
   * Registers this browser for notifications; resolves with the device id. Call it from a user gesture.
   * An open connection tells Herald the new id at once (`herald:device`), so this device counts as live on
   * its channels without reconnecting; this resolves once Herald has confirmed it.
   */
  async register(opts: PushRegisterOptions): Promise<string> {
    if (!PushClient.isSupported()) throw new PushError('Web Push is not supported here (needs a secure context, service workers and PushManager)');
    (opts.interests ?? []).forEach(checkInterest);
    const registration = typeof opts.serviceWorker === 'string' ? await navigator.serviceWorker.register(opts.serviceWorker) : opts.serviceWorker;
    await activated(registration);
    const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
    if (permission !== 'granted') throw new PushError(`Notification permission is ${permission}`);

    const { vapidPublicKey, publicKey } = await this.call<{ vapidPublicKey?: string; publicKey?: string }>('GET', '/vapid-public-key');
    const keyText = vapidPublicKey ?? publicKey;
    if (typeof keyText !== 'string') throw new PushError('Herald sent no VAPID public key');
    const applicationServerKey = base64UrlToBytes(keyText);
    let subscription = await registration.pushManager.getSubscription();
    // A subscription made with another key (rotated VAPID keys, another app) cannot receive our pushes.
    if (subscription && !sameKey(subscription.options.applicationServerKey, applicationServerKey)) {
      await subscription.unsubscribe();
      subscription = null;
    }
    subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });

    // Naming the key subscribed with keeps the device right even if the app's key rotates meanwhile.
    const { deviceId } = await this.call<{ deviceId?: string }>('POST', '/devices', { subscription: subscription.toJSON(), interests: opts.interests ?? [], vapidPublicKey: keyText });
    if (typeof deviceId !== 'string' || deviceId === '') throw new PushError('Herald sent no deviceId');
    const previous = this.store.get();
    this.store.set(deviceId);
    await saveWorkerConfig({
      reportUrl: `${this.base()}/reports`,
      subscriptionUrl: `${this.base()}/devices/${encodeURIComponent(deviceId)}/subscription`,
      endpoint: subscription.endpoint,
    });
    if (previous !== deviceId) await this.deviceChanged();
    return deviceId;
  }

  async addInterest(interest: string): Promise<void> {
    checkInterest(interest);
    await this.call('POST', `/devices/${encodeURIComponent(this.requireDevice())}/interests/${encodeURIComponent(interest)}`);
  }

  async removeInterest(interest: string): Promise<void> {
    checkInterest(interest);
    await this.call('DELETE', `/devices/${encodeURIComponent(this.requireDevice())}/interests/${encodeURIComponent(interest)}`);
  }

  /** Binds this device to a user, proven by a token your server signed (`generatePushToken`). */
  async setUser(tokenProvider: TokenProvider): Promise<void> {
    const deviceId = this.requireDevice();
    const t = await tokenProvider();
    const token = typeof t === 'string' ? t : t?.token;
    if (typeof token !== 'string' || token === '') throw new PushError('The token provider returned no token');
    await this.call('PUT', `/devices/${encodeURIComponent(deviceId)}/user`, undefined, { Authorization: `Bearer ${token}` });
  }

  /** Deletes the device at Herald, drops the browser's push subscription and forgets the id. */
  async unregister(registration?: ServiceWorkerRegistration): Promise<void> {
    const deviceId = this.store.get();
    if (deviceId !== null) await this.call('DELETE', `/devices/${encodeURIComponent(deviceId)}`);
    const reg = registration ?? (typeof navigator !== 'undefined' && 'serviceWorker' in navigator ? await navigator.serviceWorker.getRegistration() : undefined);
    const sub = reg ? await reg.pushManager.getSubscription() : null;
    if (sub) await sub.unsubscribe();
    this.store.set(null);
    await saveWorkerConfig(null);
  }

  private requireDevice(): string {
    const id = this.store.get();
    if (id === null) throw new PushError('Call push.register() first');
    return id;
  }

  private async call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base()}${path}`, {
        method,
        headers: body === undefined ? headers : { 'Content-Type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new PushError(`${method} ${path} failed: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw new PushError(`${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`, res.status);
    if (text === '') return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new PushError(`${method} ${path} did not answer JSON`, res.status);
    }
  }
}

function checkInterest(name: string): void {
  if (interestNameFault(name) !== null) {
    throw new PushError(`Invalid interest '${String(name)}': 1-${MAX_INTEREST_LENGTH} characters of A-Z a-z 0-9 _ - = @ , . ;`);
  }
}

/** Waits until the registration has an active worker: `pushManager.subscribe` needs one. */
function activated(reg: ServiceWorkerRegistration): Promise<void> {
  if (reg.active) return Promise.resolve();
  const worker = reg.installing ?? reg.waiting;
  if (!worker) return Promise.reject(new PushError('The service worker registration has no worker'));
  return new Promise((resolve, reject) => {
    worker.addEventListener('statechange', () => {
      if (worker.state === 'activated') resolve();
      else if (worker.state === 'redundant') reject(new PushError('The service worker failed to install'));
    });
  });
}

function base64UrlToBytes(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function sameKey(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.length) return false;
  const view = new Uint8Array(a);
  return view.every((x, i) => x === b[i]);
}
