/**
 * Each app's VAPID keys, loaded from the store and ready to sign. The current key is what browsers
 * subscribe with; older keys are kept because every device is signed with the key it subscribed with
 * (rotation needs new subscriptions, push.md §2.4, §4.3.7).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { HeraldError } from '../errors';
import type { AppPushConfig } from './push-config';
import type { PushStore } from './PushStore';
import { generateVapidKeys, VapidKey } from './vapid';

interface AppKeys {
  current: VapidKey;
  byId: Map<string, VapidKey>;
  byPublicKey: Map<string, VapidKey>;
  loadedAt: number;
}

/** A key another node made is looked up again at most this often per app. */
const RELOAD_EVERY_MS = 5000;

export class VapidKeyring {
  private readonly apps = new Map<string, AppKeys>();
  private readonly loading = new Map<string, Promise<AppKeys>>();

  constructor(
    private readonly store: PushStore,
    private readonly configs: ReadonlyMap<string, AppPushConfig>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The key browsers should subscribe with now. */
  async current(appId: string): Promise<VapidKey> {
    return (await this.keys(appId)).current;
  }

  /** The key a device subscribed with; null when no node knows it (the device cannot be sent to). */
  async byId(appId: string, keyId: string): Promise<VapidKey | null> {
    let keys = await this.keys(appId);
    if (!keys.byId.has(keyId) && this.now() - keys.loadedAt > RELOAD_EVERY_MS) keys = await this.reload(appId);
    return keys.byId.get(keyId) ?? null;
  }

  /** The key with this public key (what a browser says it subscribed with), or null. */
  async byPublicKey(appId: string, publicKey: string): Promise<VapidKey | null> {
    let keys = await this.keys(appId);
    if (!keys.byPublicKey.has(publicKey) && this.now() - keys.loadedAt > RELOAD_EVERY_MS) keys = await this.reload(appId);
    return keys.byPublicKey.get(publicKey) ?? null;
  }

  /** Makes a new key current, keeping the old ones; refused when the keys come from the configuration. */
  async rotate(appId: string): Promise<VapidKey> {
    const config = this.config(appId);
    if (config.configuredKey) {
      throw new HeraldError('BAD_REQUEST', 'This app\'s VAPID keys are set in the configuration (apps[].push.vapidPublicKey/vapidPrivateKey): change them there to rotate');
    }
    const pair = generateVapidKeys();
    await this.store.useVapidKey(appId, { id: `k-${randomBytes(8).toString('hex')}`, createdAt: this.now(), ...pair });
    const keys = await this.reload(appId);
    this.log.info({ app: appId, keyId: keys.current.id }, 'VAPID key rotated: devices subscribed with older keys keep working until they re-subscribe');
    return keys.current;
  }

  /** Re-reads an app's keys (a rotation on another node). */
  reload(appId: string): Promise<AppKeys> {
    const running = this.loading.get(appId);
    if (running) return running;
    const p = this.load(appId).finally(() => this.loading.delete(appId));
    this.loading.set(appId, p);
    return p;
  }

  private async keys(appId: string): Promise<AppKeys> {
    return this.apps.get(appId) ?? this.reload(appId);
  }

  private config(appId: string): AppPushConfig {
    const c = this.configs.get(appId);
    if (!c) throw new Error(`push is not enabled for app ${appId}`);
    return c;
  }

  private async load(appId: string): Promise<AppKeys> {
    const config = this.config(appId);
    let stored = await this.store.vapidKeys(appId);
    const configured = config.configuredKey;
    if (configured && !stored.some((k) => k.id === configured.id && k.current)) {
      // Keys given in the configuration are the current ones; keys used before stay for their devices.
      await this.store.useVapidKey(appId, { ...configured, createdAt: this.now() });
      stored = await this.store.vapidKeys(appId);
    } else if (!stored.some((k) => k.current)) {
      // First use: several nodes may race here; the store keeps one and everyone reads it back.
      await this.store.initVapidKey(appId, { id: `k-${randomBytes(8).toString('hex')}`, createdAt: this.now(), ...generateVapidKeys() });
      stored = await this.store.vapidKeys(appId);
      this.log.info({ app: appId }, 'generated a VAPID key for the app');
    }
    const byId = new Map<string, VapidKey>();
    const byPublicKey = new Map<string, VapidKey>();
    let current: VapidKey | null = null;
    for (const k of stored) {
      const key = new VapidKey({ id: k.id, subject: config.subject, publicKey: k.publicKey, privateKey: k.privateKey });
      byId.set(k.id, key);
      byPublicKey.set(k.publicKey, key);
      if (k.current) current = key;
    }
    if (!current) throw new Error(`push store has no current VAPID key for app ${appId}`);
    const keys: AppKeys = { current, byId, byPublicKey, loadedAt: this.now() };
    this.apps.set(appId, keys);
    return keys;
  }
}
