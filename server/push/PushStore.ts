/**
 * Durable push data: VAPID keys, devices with their interests and users, publishes and their per-device
 * delivery rows. Two implementations: `SqlitePushStore` (one node, a file in the data directory) and
 * `RedisPushStore` (a cluster). `test/contract/push-store.test.ts` runs one suite against both.
 *
 * Guarantees every implementation keeps:
 * - Durability: once a method resolves, what it wrote survives a crash of this process (SQLite: WAL
 *   commit; Redis: as durable as the Redis server's own persistence settings).
 * - Atomicity: each method is all-or-nothing. In particular `createPublish` stores the publish and every
 *   delivery row together, so an accepted publish (202) always has all its rows.
 * - One endpoint, one device: `registerDevice` with an endpoint already known returns that device's id.
 * - One row per (publish, device): a device matched by several interests or users is targeted once, and
 *   `expandPublish` run twice adds nothing the second time.
 * - Leases: a delivery returned by `claimDeliveries` is not returned again until `leaseUntil` passes (or it
 *   is released or finished with `retry`); so a node that dies mid-send loses nothing: its rows come due
 *   again. This makes delivery at-least-once: a send that happened but was not recorded is sent again.
 * - Counts: a row counts once, in the first `finishDeliveries` that moves it out of `pending`; later
 *   results for the same row (a re-sent lease) are ignored. `pending` reaches 0 exactly when every row of
 *   the publish is final, and the publish is then `done`.
 * - Reports: `delivered` and `opened` count devices whose service worker reported the push, each device
 *   once per publish however often it reports; an `opened` report also counts as `delivered` (a click proves
 *   the push arrived, and its own report may have been lost). Only a device the publish targeted counts.
 * - Clocks: every time is ms since the epoch and passed in by the caller, so tests control time.
 */
import type { Urgency } from './PushSender';

/** An application server key as stored (base64url), `current` on the one new subscriptions use. */
export interface StoredVapidKey {
  id: string;
  publicKey: string;
  privateKey: string;
  createdAt: number;
  current: boolean;
}

/** A registered browser: its push subscription, the VAPID key it subscribed with and its user. */
export interface DeviceRecord {
  id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  /** Id of the VAPID key the subscription was made with; sends are signed with it (RFC 8292 §4). */
  keyId: string;
  userId: string | null;
  createdAt: number;
  updatedAt: number;
}

/** What `registerDevice` needs. */
export interface NewDevice {
  /** Used only when the endpoint is new; a known endpoint keeps its id. */
  id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  keyId: string;
  /** Replaces the device's interests when given; kept as they are when absent. */
  interests?: string[];
  now: number;
}

export type PublishKind = 'interests' | 'users' | 'fallback' | 'test';

/** A publish as accepted: immutable once stored. */
export interface PublishRecord {
  id: string;
  kind: PublishKind;
  /** Interests, users, channels or the device id, by kind. */
  targets: string[];
  /** The plaintext every device receives (already checked to fit). */
  payload: string;
  ttl: number;
  urgency?: Urgency;
  topic?: string;
  createdAt: number;
  /** When sending starts: `createdAt`, or the publish's `deliverAt`. */
  deliverAt: number;
  /** `deliverAt + ttl`: no attempt is made after this (a TTL of 0 still gets one attempt). */
  expiresAt: number;
}

export type PublishState = 'scheduled' | 'delivering' | 'done';

/**
 * A publish with its counts: `targeted = skippedOnline + sent + expired + failed + pending`. `delivered` and
 * `opened` are what service workers reported (see the guarantees above), a subset of the targeted devices.
 */
export interface PublishStatus extends PublishRecord {
  status: PublishState;
  targeted: number;
  sent: number;
  skippedOnline: number;
  expired: number;
  failed: number;
  pending: number;
  delivered: number;
  opened: number;
}

/** What a service worker reports of a push: it reached the device, or its notification was clicked. */
export type PushReport = 'delivered' | 'opened';
export const PUSH_REPORTS: readonly PushReport[] = ['delivered', 'opened'];
/** The bit of each count in a delivery row's reports. */
export const COUNT_BIT: Record<PushReport, number> = { delivered: 1, opened: 2 };
/** The bits a report sets: `opened` sets both (see the guarantees above). */
export const REPORT_BITS: Record<PushReport, number> = { delivered: COUNT_BIT.delivered, opened: COUNT_BIT.delivered | COUNT_BIT.opened };
/** The counts a report moved: the `COUNT_BIT`s it newly set (0 for a repeat). */
export type ReportCounted = number;

/** A delivery handed to a worker, with the device as it is now (null: deleted since). */
export interface ClaimedDelivery {
  publishId: string;
  deviceId: string;
  /** Attempts made so far (0 on the first). */
  attempts: number;
  device: DeviceRecord | null;
}

/** How a delivery ended, or when to try again. `gone` also deletes the device (404/410). */
export type DeliveryResult =
  | { publishId: string; deviceId: string; outcome: 'sent' | 'failed' | 'expired' | 'gone' }
  | { publishId: string; deviceId: string; outcome: 'retry'; nextAt: number };

export type AddInterestResult = 'added' | 'exists' | 'full' | 'missing';
/**
 * `missing`: no such device, or its endpoint is not `oldEndpoint`; `conflict`: the new endpoint is already
 * another device's (its page registered it meanwhile).
 */
export type RenewResult = 'ok' | 'missing' | 'conflict';

/** A device's new push subscription, after the browser replaced the old one (`pushsubscriptionchange`). */
export interface RenewedSubscription {
  endpoint: string;
  p256dh: string;
  auth: string;
  keyId: string;
  now: number;
}
export type SetUserResult = 'ok' | 'missing' | 'conflict';

export interface PushStore {
  readonly name: string;
  /** Opens the file or connection; a single-node store also releases the leases of its previous run. */
  open(): Promise<void>;
  close(): Promise<void>;

  // ---------------------------------------------------------------- VAPID keys

  /** Every key of the app, oldest first. */
  vapidKeys(appId: string): Promise<StoredVapidKey[]>;
  /** Stores `key` as current unless the app has a current key already (first use; one racer wins). */
  initVapidKey(appId: string, key: Omit<StoredVapidKey, 'current'>): Promise<void>;
  /** Adds `key` if new and makes it current; the others stay for devices that subscribed with them. */
  useVapidKey(appId: string, key: Omit<StoredVapidKey, 'current'>): Promise<void>;

  // ---------------------------------------------------------------- devices

  /** Creates a device, or updates the one with this endpoint (keys, key id, interests if given). */
  registerDevice(appId: string, device: NewDevice): Promise<{ deviceId: string; created: boolean }>;
  device(appId: string, deviceId: string): Promise<DeviceRecord | null>;
  /**
   * Moves a device to a new subscription (endpoint and keys), keeping its id, interests and user: the old
   * endpoint no longer reaches the browser. Only when the device's endpoint is `oldEndpoint`: the endpoint
   * is the proof that the caller is that browser, since a device id alone travels in connection URLs and
   * must not let anyone redirect a user's notifications. Counts as a registration for `pruneIdleDevices`.
   */
  renewSubscription(appId: string, deviceId: string, oldEndpoint: string, sub: RenewedSubscription): Promise<RenewResult>;
  /** Deletes a device with its interests and user link; false when it did not exist. */
  deleteDevice(appId: string, deviceId: string): Promise<boolean>;
  /** The device's interests, sorted; null for an unknown device. */
  interests(appId: string, deviceId: string): Promise<string[] | null>;
  /** Replaces the device's interests; false for an unknown device. */
  setInterests(appId: string, deviceId: string, interests: string[]): Promise<boolean>;
  /** Adds one interest unless the device already has `max`. */
  addInterest(appId: string, deviceId: string, interest: string, max: number): Promise<AddInterestResult>;
  /** Removes one interest; false for an unknown device. */
  removeInterest(appId: string, deviceId: string, interest: string): Promise<boolean>;
  /** Binds the device to a user; a device bound to another user stays as it is (`conflict`). */
  setUser(appId: string, deviceId: string, userId: string): Promise<SetUserResult>;
  /** Deletes every device of the user; returns how many. */
  deleteUser(appId: string, userId: string): Promise<number>;
  /** Distinct devices holding any of the interests. */
  devicesForInterests(appId: string, interests: string[]): Promise<string[]>;
  /** Distinct devices of any of the users. */
  devicesForUsers(appId: string, userIds: string[]): Promise<string[]>;

  // ---------------------------------------------------------------- publishes and deliveries

  /**
   * Stores a publish. With an audience, its delivery rows are stored with it, due at `deliverAt`
   * (`skippedOnline` devices are only counted). Without one it is `scheduled`: `claimScheduled` hands it
   * out at `deliverAt` and `expandPublish` adds its rows then.
   */
  createPublish(appId: string, publish: PublishRecord, audience: { deviceIds: string[]; skippedOnline: number } | null): Promise<void>;
  /** Scheduled publishes due by `now`, each leased until `leaseUntil`. */
  claimScheduled(appId: string, now: number, limit: number, leaseUntil: number): Promise<PublishRecord[]>;
  /** Adds the rows of a scheduled publish (idempotent) and starts its delivery. */
  expandPublish(appId: string, publishId: string, deviceIds: string[], now: number): Promise<void>;
  publish(appId: string, publishId: string): Promise<PublishStatus | null>;
  /** Up to `limit` pending deliveries due by `now`, oldest first, each leased until `leaseUntil`. */
  claimDeliveries(appId: string, now: number, limit: number, leaseUntil: number): Promise<ClaimedDelivery[]>;
  /** Records results (see the counting guarantee above). */
  finishDeliveries(appId: string, results: DeliveryResult[], now: number): Promise<void>;
  /**
   * Records a service worker's report for the device registered with `endpoint` (the push subscription's
   * endpoint, which the worker knows and which is as secret as a device id). Resolves with the counts it
   * moved, or null when the publish did not target that subscription (or is gone).
   */
  recordReport(appId: string, publishId: string, endpoint: string, report: PushReport): Promise<ReportCounted | null>;
  /** Makes claimed deliveries due again at `now` without counting an attempt (graceful shutdown). */
  releaseDeliveries(appId: string, rows: { publishId: string; deviceId: string }[], now: number): Promise<void>;
  /** When the next delivery or scheduled publish is due (leased ones included), or null. */
  nextDueAt(appId: string): Promise<number | null>;
  /** Forgets finished publishes older than `before`. */
  prune(appId: string, before: number): Promise<void>;
  /**
   * Deletes up to `limit` devices (with their interests and user link) last registered before `before`;
   * returns their ids. Call again while it returns `limit` ids.
   */
  pruneIdleDevices(appId: string, before: number, limit: number): Promise<string[]>;
}
