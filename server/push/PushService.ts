/**
 * The Web Push module of one node: the device API (browsers), the publish API (app servers), the
 * live-with-fallback hook the gateway calls, and the delivery worker. The HTTP plugins and the gateway
 * call only this; it owns the store, the VAPID keys, the sender and the worker.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { interestNameProblem, MAX_INTERESTS_PER_DEVICE, MAX_INTERESTS_PER_PUBLISH, pushUserIdProblem } from '../../sdk/protocol';
import { redisSpec } from '../cluster/redis-connection';
import { fail } from '../errors';
import type { AppOptions, HeraldOptions } from '../options/Options';
import type { ClusterState } from '../state/ClusterState';
import type { PreparedPush, PushFallback } from './PushFallback';
import {
  buildPayload,
  parseDeliverAt,
  parseInterests,
  parseRenewal,
  parseReport,
  parseSubscription,
  parseUsers,
  parseWebPush,
  PUBLISH_ID_PATTERN,
  type WebPush,
} from './push-rules';
import { pushHostAllowed, type PushConfig } from './push-config';
import { checkPushEndpoint, PushSender, type RetryDelayOptions } from './PushSender';
import { COUNT_BIT, PUSH_REPORTS, type ClaimedDelivery, type PublishKind, type PublishRecord, type PublishStatus, type PushReport, type PushStore } from './PushStore';
import { verifyPushToken } from './push-token';
import { PushWorker, type AttemptOutcome } from './PushWorker';
import { RedisPushStore } from './RedisPushStore';
import { SqlitePushStore } from './SqlitePushStore';
import { VapidKeyring } from './VapidKeyring';
import { EncryptPool } from './encrypt-pool';
import type { VapidKey } from './vapid';

function encryptThreadEnded(log: Logger, err: Error, fellBack: boolean): void {
  if (fellBack) log.error({ err }, 'push: encryption threads keep failing to start; encrypting on the event loop from now on');
  else log.error({ err }, 'push: an encryption thread ended; started another (its messages are retried)');
}

/** Timings and backends a test (or an embedder) may change; the defaults suit production. */
export interface PushTuning {
  /** A store of one's own instead of SQLite/Redis chosen from the options. */
  store?: PushStore;
  leaseMs?: number;
  pollMs?: number;
  pruneEveryMs?: number;
  backoff?: RetryDelayOptions;
}

/** Where push reports: Prometheus metrics and the debug console (both optional). */
export interface PushReporting {
  pushSent?(appId: string, outcome: AttemptOutcome): void;
  /** A service worker's report moved a publish's `delivered` or `opened` count (repeats move none). */
  pushReported?(appId: string, report: PushReport): void;
  report?(appId: string, detail: string): void;
}

/** The SQLite file of the embedded store, in the data directory. */
export const PUSH_DB_FILE = 'push.sqlite';

const DEVICE_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const PUBLISH_FIELDS = new Set(['interests', 'users', 'web', 'deliverAt', 'apns', 'fcm', 'webhookUrl']);

interface Prepared extends PreparedPush {
  record: PublishRecord;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Picks the store: Redis when the node is part of a cluster, else a SQLite file in the data directory. */
export function createPushStore(options: HeraldOptions, log: Logger): PushStore {
  if (options.redis) return new RedisPushStore({ spec: redisSpec(options.redis), prefix: options.redisPrefix ?? 'herald:', log });
  return new SqlitePushStore(join(options.dataDir, PUSH_DB_FILE));
}

export class PushService implements PushFallback {
  readonly store: PushStore;
  readonly keyring: VapidKeyring;
  readonly sender: PushSender;
  readonly worker: PushWorker;
  private readonly allowHost: ((hostname: string) => boolean) | undefined;
  private started = false;

  constructor(
    readonly config: PushConfig,
    private readonly state: ClusterState,
    store: PushStore,
    private readonly log: Logger,
    private readonly reporting: PushReporting = {},
    tuning: PushTuning = {},
  ) {
    this.store = store;
    this.keyring = new VapidKeyring(store, config.apps, log);
    this.allowHost = config.allowInsecureEndpoints ? undefined : (host) => pushHostAllowed(host, config.allowedHosts);
    this.sender = new PushSender({
      maxConcurrency: config.concurrency,
      maxSocketsPerOrigin: config.maxSocketsPerOrigin,
      encryption: new EncryptPool(config.encryptThreads, { onThreadExit: (err, fellBack) => encryptThreadEnded(log, err, fellBack) }),
      timeoutMs: config.requestTimeoutMs,
      allowInsecureEndpoints: config.allowInsecureEndpoints,
      allowHost: this.allowHost,
      backoff: tuning.backoff,
    });
    this.worker = new PushWorker({
      store,
      sender: this.sender,
      keyring: this.keyring,
      appIds: [...config.apps.keys()],
      audience: (appId, publish) => this.audienceOf(appId, publish),
      log,
      concurrency: config.concurrency,
      maxAttempts: config.maxAttempts,
      leaseMs: tuning.leaseMs,
      pollMs: tuning.pollMs,
      retentionMs: config.publishRetentionSeconds * 1000,
      deviceIdleMs: config.deviceIdleDays * 86_400_000,
      pruneEveryMs: tuning.pruneEveryMs,
      onAttempt: (appId, row, outcome, detail) => this.onAttempt(appId, row, outcome, detail),
    });
  }

  /** Opens the store, loads (or makes) each app's VAPID keys and starts delivering. */
  async start(): Promise<void> {
    await this.store.open();
    for (const appId of this.config.apps.keys()) {
      try {
        await this.keyring.current(appId);
      } catch (err) {
        // Redis may be away at boot; the keys load on first use instead.
        this.log.warn({ err, app: appId }, 'could not load VAPID keys yet');
      }
    }
    this.worker.start();
    this.started = true;
  }

  /** Stops delivering (sends in flight get until `deadline`, ms) and closes the store. */
  async stop(deadline: number): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.worker.stop(deadline);
    await this.store.close();
  }

  /** True when push is on for the app. */
  enabled(app: AppOptions): boolean {
    return this.config.apps.has(app.id);
  }

  /** Throws 501 unless push is on for the app. */
  requireEnabled(app: AppOptions): void {
    if (!this.enabled(app)) fail('PUSH_NOT_CONFIGURED', `Push is not enabled for app ${app.id}`);
  }

  private defaultTtl(app: AppOptions): number {
    return this.config.apps.get(app.id)?.ttlSeconds ?? 0;
  }

  private checkEndpoint = (endpoint: string): void => {
    checkPushEndpoint(endpoint, this.config.allowInsecureEndpoints, this.allowHost);
  };

  // ---------------------------------------------------------------- device API (browsers)

  async vapidPublicKey(app: AppOptions): Promise<{ vapidPublicKey: string }> {
    return { vapidPublicKey: (await this.keyring.current(app.id)).publicKey };
  }

  /** Registers a subscription (or updates the device that has its endpoint). */
  async registerDevice(app: AppOptions, body: unknown): Promise<{ deviceId: string; created: boolean; vapidPublicKey: string }> {
    if (!isObject(body)) fail('BAD_REQUEST', 'Body must be { "subscription": {...}, "interests": [] }');
    const sub = parseSubscription(body.subscription, this.checkEndpoint);
    const interests = body.interests === undefined ? undefined : parseInterests(body.interests, MAX_INTERESTS_PER_DEVICE);
    const current = await this.keyring.current(app.id);
    const key = await this.subscribedKey(app, body.vapidPublicKey, current);
    const { deviceId, created } = await this.store.registerDevice(app.id, {
      id: `web-${randomUUID()}`,
      ...sub,
      keyId: key.id,
      ...(interests ? { interests } : {}),
      now: Date.now(),
    });
    return { deviceId, created, vapidPublicKey: current.publicKey };
  }

  /** The key the browser subscribed with, when it says (right even if a rotation happened meanwhile), else `current`. */
  private async subscribedKey(app: AppOptions, named: unknown, current: VapidKey): Promise<VapidKey> {
    if (named === undefined) return current;
    const key = typeof named === 'string' ? await this.keyring.byPublicKey(app.id, named) : null;
    return key ?? fail('BAD_REQUEST', 'vapidPublicKey is not a key of this app: fetch vapid-public-key and subscribe again');
  }

  /**
   * The browser replaced the device's push subscription (`pushsubscriptionchange`, sent by herald-sw.js): the
   * device keeps its id, interests and user and is pushed at the new endpoint from now on.
   */
  async renewSubscription(app: AppOptions, deviceId: string, body: unknown): Promise<{ deviceId: string }> {
    this.checkDeviceId(deviceId);
    const { oldEndpoint, subscription, vapidPublicKey } = parseRenewal(body, this.checkEndpoint);
    const key = await this.subscribedKey(app, vapidPublicKey, await this.keyring.current(app.id));
    const result = await this.store.renewSubscription(app.id, deviceId, oldEndpoint, { ...subscription, keyId: key.id, now: Date.now() });
    // Also when the old endpoint is wrong: the answer does not tell a guessed device id from a known one.
    if (result === 'missing') this.deviceNotFound(deviceId);
    if (result === 'conflict') fail('PUSH_ENDPOINT_CONFLICT');
    return { deviceId };
  }

  private checkDeviceId(deviceId: string): void {
    if (!DEVICE_ID_PATTERN.test(deviceId)) fail('NOT_FOUND', 'Device not found');
  }

  private deviceNotFound(deviceId: string): never {
    return fail('NOT_FOUND', `Device ${deviceId.slice(0, 64)} not found`);
  }

  async interests(app: AppOptions, deviceId: string): Promise<{ interests: string[] }> {
    this.checkDeviceId(deviceId);
    const interests = await this.store.interests(app.id, deviceId);
    if (!interests) this.deviceNotFound(deviceId);
    return { interests };
  }

  async setInterests(app: AppOptions, deviceId: string, body: unknown): Promise<{ interests: string[] }> {
    this.checkDeviceId(deviceId);
    if (!isObject(body)) fail('BAD_REQUEST', 'Body must be { "interests": [...] }');
    const interests = parseInterests(body.interests, MAX_INTERESTS_PER_DEVICE);
    if (!(await this.store.setInterests(app.id, deviceId, interests))) this.deviceNotFound(deviceId);
    return { interests: [...interests].sort() };
  }

  async addInterest(app: AppOptions, deviceId: string, interest: string): Promise<void> {
    this.checkDeviceId(deviceId);
    const problem = interestNameProblem(interest);
    if (problem) fail('BAD_REQUEST', problem);
    const r = await this.store.addInterest(app.id, deviceId, interest, MAX_INTERESTS_PER_DEVICE);
    if (r === 'missing') this.deviceNotFound(deviceId);
    if (r === 'full') fail('BAD_REQUEST', `A device may hold at most ${MAX_INTERESTS_PER_DEVICE} interests`);
  }

  async removeInterest(app: AppOptions, deviceId: string, interest: string): Promise<void> {
    this.checkDeviceId(deviceId);
    const problem = interestNameProblem(interest);
    if (problem) fail('BAD_REQUEST', problem);
    if (!(await this.store.removeInterest(app.id, deviceId, interest))) this.deviceNotFound(deviceId);
  }

  async deleteDevice(app: AppOptions, deviceId: string): Promise<void> {
    this.checkDeviceId(deviceId);
    if (!(await this.store.deleteDevice(app.id, deviceId))) this.deviceNotFound(deviceId);
  }

  /** Binds a device to the user named by a token the app's server signed (push-token.ts). */
  async bindUser(app: AppOptions, deviceId: string, authorization: string | undefined): Promise<{ deviceId: string; userId: string }> {
    this.checkDeviceId(deviceId);
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!m) fail('PUSH_TOKEN_INVALID', 'Send the user token as Authorization: Bearer <token>');
    const check = verifyPushToken(app.secret, m[1], Math.floor(Date.now() / 1000));
    if (!check.ok) fail('PUSH_TOKEN_INVALID', `Invalid user token: ${check.problem}`);
    const r = await this.store.setUser(app.id, deviceId, check.userId);
    if (r === 'missing') this.deviceNotFound(deviceId);
    if (r === 'conflict') fail('PUSH_USER_CONFLICT');
    return { deviceId, userId: check.userId };
  }

  // ---------------------------------------------------------------- publish API (app servers, signed)

  private parsePublishBody(body: unknown): Record<string, unknown> {
    if (!isObject(body)) fail('BAD_REQUEST', 'Body must be a JSON object');
    for (const k of Object.keys(body)) if (!PUBLISH_FIELDS.has(k)) fail('BAD_REQUEST', `${k} is not a known field`);
    if (body.web === undefined) fail('BAD_REQUEST', 'web is required: { "notification": {...}, "data": {...} }');
    return body;
  }

  async publishToInterests(app: AppOptions, body: unknown): Promise<{ publishId: string }> {
    const b = this.parsePublishBody(body);
    if (b.users !== undefined) fail('BAD_REQUEST', 'Publish to interests and to users in separate requests');
    const interests = parseInterests(b.interests, MAX_INTERESTS_PER_PUBLISH, 1);
    const web = parseWebPush(b.web, this.defaultTtl(app));
    return this.accept(app, 'interests', interests, web, parseDeliverAt(b.deliverAt, Date.now()));
  }

  async publishToUsers(app: AppOptions, body: unknown): Promise<{ publishId: string }> {
    const b = this.parsePublishBody(body);
    if (b.interests !== undefined) fail('BAD_REQUEST', 'Publish to interests and to users in separate requests');
    const users = parseUsers(b.users);
    const web = parseWebPush(b.web, this.defaultTtl(app));
    return this.accept(app, 'users', users, web, parseDeliverAt(b.deliverAt, Date.now()));
  }

  /** Sends a test notification to one device (also the debug console's form, by interest or user). */
  async testDevice(app: AppOptions, deviceId: string, body: unknown): Promise<{ publishId: string }> {
    this.checkDeviceId(deviceId);
    if (!(await this.store.device(app.id, deviceId))) this.deviceNotFound(deviceId);
    const given = isObject(body) ? body.web : undefined;
    const web = parseWebPush(given ?? { notification: { title: 'Herald test notification', body: 'Web Push works on this device.' } }, this.defaultTtl(app));
    return this.accept(app, 'test', [deviceId], web, null);
  }

  /** The debug console's test push: `{ target, title, body }`, target an interest or a user id. */
  async consoleTest(app: AppOptions, body: Record<string, unknown>): Promise<{ publishId: string; devices: number }> {
    this.requireEnabled(app);
    const target = body.target;
    if (typeof target !== 'string' || target === '') fail('BAD_REQUEST', 'Name an interest or a user id');
    const notification: Record<string, string> = {};
    if (typeof body.title === 'string') notification.title = body.title;
    if (typeof body.body === 'string') notification.body = body.body;
    const web = parseWebPush({ notification }, this.defaultTtl(app));
    const devices = new Set<string>();
    if (interestNameProblem(target) === null) for (const d of await this.store.devicesForInterests(app.id, [target])) devices.add(d);
    if (pushUserIdProblem(target) === null) for (const d of await this.store.devicesForUsers(app.id, [target])) devices.add(d);
    const { publishId } = await this.accept(app, 'test', [target], web, null, [...devices]);
    return { publishId, devices: devices.size };
  }

  /**
   * Stores a publish before answering: at once with its audience, or `scheduled` when `deliverAt` is
   * ahead (the audience is then looked up when it comes due). The payload is built and size-checked here,
   * so an oversized publish gets 413 and nothing is stored.
   */
  private async accept(app: AppOptions, kind: PublishKind, targets: string[], web: WebPush, deliverAt: number | null, audience?: string[]): Promise<{ publishId: string }> {
    this.requireEnabled(app);
    const now = Date.now();
    const record = this.record(kind, targets, web, now, deliverAt, {});
    if (record.deliverAt > now) await this.store.createPublish(app.id, record, null);
    else {
      const deviceIds = audience ?? (await this.audienceOf(app.id, record));
      await this.store.createPublish(app.id, record, { deviceIds, skippedOnline: 0 });
    }
    this.worker.kick();
    this.reporting.report?.(app.id, `push ${kind} publish ${record.id} accepted for ${targets.slice(0, 5).join(', ')}${targets.length > 5 ? '…' : ''}`);
    return { publishId: record.id };
  }

  private record(kind: PublishKind, targets: string[], web: WebPush, now: number, deliverAt: number | null, meta: { channel?: string; event?: string }): PublishRecord {
    const id = `pubid-${randomUUID()}`;
    const payload = buildPayload(web, { publishId: id, ...meta });
    const start = deliverAt !== null && deliverAt > now ? deliverAt : now;
    const record: PublishRecord = { id, kind, targets, payload, ttl: web.ttl, createdAt: now, deliverAt: start, expiresAt: start + web.ttl * 1000 };
    if (web.urgency) record.urgency = web.urgency;
    if (web.topic) record.topic = web.topic;
    return record;
  }

  /** The devices a publish goes to, by its kind. */
  private async audienceOf(appId: string, publish: PublishRecord): Promise<string[]> {
    switch (publish.kind) {
      case 'interests':
      case 'fallback':
        return this.store.devicesForInterests(appId, publish.targets);
      case 'users':
        return this.store.devicesForUsers(appId, publish.targets);
      case 'test': {
        const ids = new Set<string>();
        for (const t of publish.targets) {
          if ((await this.store.device(appId, t)) !== null) ids.add(t);
          else {
            if (interestNameProblem(t) === null) for (const d of await this.store.devicesForInterests(appId, [t])) ids.add(d);
            for (const d of await this.store.devicesForUsers(appId, [t])) ids.add(d);
          }
        }
        return [...ids];
      }
    }
  }

  /**
   * A service worker's report that a push reached its device or that its notification was clicked. Counted
   * once per device and publish (a repeat is answered like the first); a device the publish did not target,
   * or a publish already pruned, is a 404.
   */
  async report(app: AppOptions, body: unknown): Promise<void> {
    const { publishId, endpoint, report } = parseReport(body);
    const counted = await this.store.recordReport(app.id, publishId, endpoint, report);
    if (counted === null) fail('NOT_FOUND', `No push of publish ${publishId} went to this subscription (or the publish is older than ${this.config.publishRetentionSeconds} s)`);
    for (const kind of PUSH_REPORTS) if (counted & COUNT_BIT[kind]) this.reporting.pushReported?.(app.id, kind);
  }

  async publishStatus(app: AppOptions, publishId: string): Promise<Record<string, unknown>> {
    this.requireEnabled(app);
    if (!PUBLISH_ID_PATTERN.test(publishId)) fail('NOT_FOUND', 'Publish not found');
    const p = await this.store.publish(app.id, publishId);
    if (!p) fail('NOT_FOUND', `Publish ${publishId.slice(0, 64)} not found (finished publishes are kept for ${this.config.publishRetentionSeconds} s)`);
    return formatStatus(p);
  }

  async deleteUser(app: AppOptions, userId: string): Promise<{ deletedDevices: number }> {
    this.requireEnabled(app);
    const problem = pushUserIdProblem(userId);
    if (problem) fail('BAD_REQUEST', problem);
    return { deletedDevices: await this.store.deleteUser(app.id, userId) };
  }

  async rotateVapidKey(app: AppOptions): Promise<{ vapidPublicKey: string; keyId: string }> {
    this.requireEnabled(app);
    const key = await this.keyring.rotate(app.id);
    return { vapidPublicKey: key.publicKey, keyId: key.id };
  }

  // ---------------------------------------------------------------- live with fallback (PushFallback)

  prepare(app: AppOptions, channels: string[], event: string, push: unknown): Prepared {
    this.requireEnabled(app);
    if (channels.length > MAX_INTERESTS_PER_PUBLISH) fail('BAD_REQUEST', `push: at most ${MAX_INTERESTS_PER_PUBLISH} channels`);
    for (const c of channels) {
      const problem = interestNameProblem(c);
      if (problem) fail('BAD_REQUEST', `push: channel ${c.slice(0, 64)} cannot name an interest (${problem})`);
    }
    const web = parseWebPush(push, this.defaultTtl(app));
    const meta = channels.length === 1 ? { channel: channels[0], event } : { event };
    const record = this.record('fallback', channels, web, Date.now(), null, meta);
    return { publishId: record.id, record };
  }

  async fallback(app: AppOptions, channels: string[], prepared: PreparedPush): Promise<string> {
    const { record } = prepared as Prepared;
    const deviceIds = await this.store.devicesForInterests(app.id, channels);
    let online = new Set<string>();
    if (deviceIds.length > 0) {
      for (const channel of channels) {
        const live = await this.state.liveDevices(app.id, channel, deviceIds);
        if (online.size === 0) online = live;
        else for (const d of live) online.add(d);
      }
    }
    const offline = online.size === 0 ? deviceIds : deviceIds.filter((d) => !online.has(d));
    await this.store.createPublish(app.id, record, { deviceIds: offline, skippedOnline: deviceIds.length - offline.length });
    if (offline.length > 0) this.worker.kick();
    this.reporting.report?.(app.id, `push fallback ${record.id} for ${channels.join(', ')}: ${offline.length} offline, ${online.size} online`);
    return record.id;
  }

  // ---------------------------------------------------------------- reporting

  private readonly lastAuthWarning = new Map<string, number>();

  private onAttempt(appId: string, row: ClaimedDelivery, outcome: AttemptOutcome, detail?: string): void {
    this.reporting.pushSent?.(appId, outcome);
    if (outcome === 'sent' || outcome === 'retry') return;
    if (outcome === 'rejected' && detail && /answered 40[13]/.test(detail)) {
      // 401/403 on one device is a stale key; on every device a VAPID configuration problem (push.md §8).
      const last = this.lastAuthWarning.get(appId) ?? 0;
      if (Date.now() - last > 60_000) {
        this.lastAuthWarning.set(appId, Date.now());
        this.log.warn({ app: appId, device: row.deviceId, detail }, 'push service refused our VAPID signature; if this repeats for many devices, check the VAPID keys and subject');
      }
    }
    this.reporting.report?.(appId, `push ${outcome} for ${row.deviceId} (publish ${row.publishId})${detail ? `: ${detail}` : ''}`);
  }
}

/** The publish status as the API returns it. */
export function formatStatus(p: PublishStatus): Record<string, unknown> {
  return {
    publishId: p.id,
    kind: p.kind,
    status: p.status,
    createdAt: new Date(p.createdAt).toISOString(),
    deliverAt: new Date(p.deliverAt).toISOString(),
    expiresAt: new Date(p.expiresAt).toISOString(),
    targeted: p.targeted,
    sent: p.sent,
    skippedOnline: p.skippedOnline,
    expired: p.expired,
    failed: p.failed,
    pending: p.pending,
    delivered: p.delivered,
    opened: p.opened,
  };
}
