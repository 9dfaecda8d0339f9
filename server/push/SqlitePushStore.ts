/**
 * The embedded push store: one SQLite file in the data directory (WAL, `synchronous=NORMAL`: a commit
 * survives a crash of the process; `FULL` would also survive power loss at an fsync per commit). The file
 * is opened with an exclusive lock, so a second Herald on the same data directory fails at start-up
 * instead of sharing leases: a cluster uses RedisPushStore.
 *
 * Tables: vapid_keys, devices (unique per app and endpoint), device_interests (indexed by interest),
 * publishes (counts kept incrementally) and deliveries (one row per publish and device, with a partial
 * index on the pending ones ordered by due time). A claim moves `due_at` to the lease's end and sets
 * `leased`; `open()` releases the leases of a previous run of this node.
 */
import type Database from 'better-sqlite3';
import { openNodeSqlite } from '../storage/node-sqlite';
import type { Urgency } from './PushSender';
import {
  COUNT_BIT,
  REPORT_BITS,
  type AddInterestResult,
  type ClaimedDelivery,
  type DeliveryResult,
  type DeviceRecord,
  type NewDevice,
  type PublishRecord,
  type PublishStatus,
  type PushReport,
  type PushStore,
  type RenewedSubscription,
  type RenewResult,
  type ReportCounted,
  type SetUserResult,
  type StoredVapidKey,
} from './PushStore';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS vapid_keys (
  app_id TEXT NOT NULL, key_id TEXT NOT NULL, public_key TEXT NOT NULL, private_key TEXT NOT NULL,
  created_at INTEGER NOT NULL, current INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (app_id, key_id)
);
CREATE TABLE IF NOT EXISTS devices (
  app_id TEXT NOT NULL, device_id TEXT NOT NULL, endpoint TEXT NOT NULL, p256dh TEXT NOT NULL, auth TEXT NOT NULL,
  key_id TEXT NOT NULL, user_id TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (app_id, device_id), UNIQUE (app_id, endpoint)
);
CREATE INDEX IF NOT EXISTS devices_by_user ON devices (app_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS devices_by_updated ON devices (app_id, updated_at);
CREATE TABLE IF NOT EXISTS device_interests (
  app_id TEXT NOT NULL, device_id TEXT NOT NULL, interest TEXT NOT NULL,
  PRIMARY KEY (app_id, device_id, interest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS interest_devices ON device_interests (app_id, interest, device_id);
CREATE TABLE IF NOT EXISTS publishes (
  app_id TEXT NOT NULL, publish_id TEXT NOT NULL, kind TEXT NOT NULL, targets TEXT NOT NULL, payload TEXT NOT NULL,
  ttl INTEGER NOT NULL, urgency TEXT, topic TEXT,
  created_at INTEGER NOT NULL, deliver_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  status TEXT NOT NULL, sched_due INTEGER, sched_leased INTEGER NOT NULL DEFAULT 0,
  targeted INTEGER NOT NULL DEFAULT 0, skipped_online INTEGER NOT NULL DEFAULT 0, sent INTEGER NOT NULL DEFAULT 0,
  expired INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, pending INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER, delivered INTEGER NOT NULL DEFAULT 0, opened INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (app_id, publish_id)
);
CREATE INDEX IF NOT EXISTS publishes_scheduled ON publishes (app_id, sched_due) WHERE status = 'scheduled';
CREATE INDEX IF NOT EXISTS publishes_finished ON publishes (app_id, finished_at) WHERE status = 'done';
CREATE TABLE IF NOT EXISTS deliveries (
  app_id TEXT NOT NULL, publish_id TEXT NOT NULL, device_id TEXT NOT NULL,
  state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
  due_at INTEGER NOT NULL, leased INTEGER NOT NULL DEFAULT 0, reported INTEGER NOT NULL DEFAULT 0,
  UNIQUE (app_id, publish_id, device_id)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (app_id, due_at) WHERE state = 0;
`;

/**
 * Columns added since a table was first created: files written by an older Herald get them at open
 * (`CREATE TABLE IF NOT EXISTS` leaves an existing table as it is).
 */
const ADDED_COLUMNS: Record<string, Record<string, string>> = {
  publishes: { delivered: 'INTEGER NOT NULL DEFAULT 0', opened: 'INTEGER NOT NULL DEFAULT 0' },
  deliveries: { reported: 'INTEGER NOT NULL DEFAULT 0' },
};

function addMissingColumns(db: Database.Database): void {
  for (const [table, columns] of Object.entries(ADDED_COLUMNS)) {
    const have = new Set((db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
    for (const [name, type] of Object.entries(columns)) if (!have.has(name)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
  }
}

/** `deliveries.state`: 0 pending, then these. */
const STATE: Record<'sent' | 'failed' | 'expired', number> = { sent: 1, failed: 2, expired: 3 };

interface DeviceRow {
  device_id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  key_id: string;
  user_id: string | null;
  created_at: number;
  updated_at: number;
}

interface PublishRow {
  publish_id: string;
  kind: string;
  targets: string;
  payload: string;
  ttl: number;
  urgency: string | null;
  topic: string | null;
  created_at: number;
  deliver_at: number;
  expires_at: number;
  status: string;
  targeted: number;
  skipped_online: number;
  sent: number;
  expired: number;
  failed: number;
  pending: number;
  delivered: number;
  opened: number;
}

function toDevice(r: DeviceRow): DeviceRecord {
  return {
    id: r.device_id,
    endpoint: r.endpoint,
    p256dh: r.p256dh,
    auth: r.auth,
    keyId: r.key_id,
    userId: r.user_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toPublish(r: PublishRow): PublishRecord {
  const p: PublishRecord = {
    id: r.publish_id,
    kind: r.kind as PublishRecord['kind'],
    targets: JSON.parse(r.targets) as string[],
    payload: r.payload,
    ttl: r.ttl,
    createdAt: r.created_at,
    deliverAt: r.deliver_at,
    expiresAt: r.expires_at,
  };
  if (r.urgency !== null) p.urgency = r.urgency as Urgency;
  if (r.topic !== null) p.topic = r.topic;
  return p;
}

/** PushStore in a local SQLite file (see the module comment). */
export class SqlitePushStore implements PushStore {
  readonly name = 'sqlite';
  private db: Database.Database | null = null;
  private statements: ReturnType<SqlitePushStore['prepare']> | null = null;

  constructor(readonly file: string) {}

  async open(): Promise<void> {
    const { db } = openNodeSqlite(
      this.file,
      'push store',
      SCHEMA,
      (db) => {
        db.pragma('foreign_keys = OFF');
        addMissingColumns(db);
        // A previous run of this node died holding leases: nobody else can be sending them, so release now.
        const now = Date.now();
        db.prepare('UPDATE deliveries SET due_at = @now, leased = 0 WHERE leased = 1 AND state = 0').run({ now });
        db.prepare("UPDATE publishes SET sched_due = @now, sched_leased = 0 WHERE sched_leased = 1 AND status = 'scheduled'").run({ now });
      },
      ' (a cluster stores push data in Redis)',
    );
    this.db = db;
    this.statements = this.prepare(db);
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = null;
    this.statements = null;
  }

  private get conn(): Database.Database {
    if (!this.db) throw new Error('push store is not open');
    return this.db;
  }

  /** The prepared statements; throws once the store is closed. */
  private get s(): ReturnType<SqlitePushStore['prepare']> {
    if (!this.statements) throw new Error('push store is not open');
    return this.statements;
  }

  private prepare(db: Database.Database) {
    return {
      keys: db.prepare('SELECT key_id, public_key, private_key, created_at, current FROM vapid_keys WHERE app_id = ? ORDER BY created_at, key_id'),
      hasCurrentKey: db.prepare('SELECT 1 FROM vapid_keys WHERE app_id = ? AND current = 1'),
      insertKey: db.prepare('INSERT OR IGNORE INTO vapid_keys (app_id, key_id, public_key, private_key, created_at, current) VALUES (?, ?, ?, ?, ?, 0)'),
      clearCurrent: db.prepare('UPDATE vapid_keys SET current = 0 WHERE app_id = ? AND current = 1'),
      setCurrent: db.prepare('UPDATE vapid_keys SET current = 1 WHERE app_id = ? AND key_id = ?'),

      deviceByEndpoint: db.prepare('SELECT device_id FROM devices WHERE app_id = ? AND endpoint = ?'),
      device: db.prepare('SELECT * FROM devices WHERE app_id = ? AND device_id = ?'),
      devicesIn: db.prepare('SELECT * FROM devices WHERE app_id = ? AND device_id IN (SELECT value FROM json_each(?))'),
      insertDevice: db.prepare(
        'INSERT INTO devices (app_id, device_id, endpoint, p256dh, auth, key_id, user_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)',
      ),
      updateDevice: db.prepare('UPDATE devices SET p256dh = ?, auth = ?, key_id = ?, updated_at = ? WHERE app_id = ? AND device_id = ?'),
      deleteDevice: db.prepare('DELETE FROM devices WHERE app_id = ? AND device_id = ?'),
      renewDevice: db.prepare('UPDATE devices SET endpoint = ?, p256dh = ?, auth = ?, key_id = ?, updated_at = ? WHERE app_id = ? AND device_id = ?'),
      idleDevices: db.prepare('SELECT device_id FROM devices WHERE app_id = ? AND updated_at < ? ORDER BY updated_at LIMIT ?'),
      interests: db.prepare('SELECT interest FROM device_interests WHERE app_id = ? AND device_id = ? ORDER BY interest'),
      interestCount: db.prepare('SELECT COUNT(*) AS n FROM device_interests WHERE app_id = ? AND device_id = ?'),
      hasInterest: db.prepare('SELECT 1 FROM device_interests WHERE app_id = ? AND device_id = ? AND interest = ?'),
      addInterest: db.prepare('INSERT OR IGNORE INTO device_interests (app_id, device_id, interest) VALUES (?, ?, ?)'),
      removeInterest: db.prepare('DELETE FROM device_interests WHERE app_id = ? AND device_id = ? AND interest = ?'),
      clearInterests: db.prepare('DELETE FROM device_interests WHERE app_id = ? AND device_id = ?'),
      setUser: db.prepare('UPDATE devices SET user_id = ?, updated_at = ? WHERE app_id = ? AND device_id = ?'),
      userDevices: db.prepare('SELECT device_id FROM devices WHERE app_id = ? AND user_id = ?'),
      devicesForInterests: db.prepare('SELECT DISTINCT device_id FROM device_interests WHERE app_id = ? AND interest IN (SELECT value FROM json_each(?))'),
      devicesForUsers: db.prepare('SELECT device_id FROM devices WHERE app_id = ? AND user_id IN (SELECT value FROM json_each(?))'),

      insertPublish: db.prepare(
        `INSERT INTO publishes (app_id, publish_id, kind, targets, payload, ttl, urgency, topic, created_at, deliver_at, expires_at, status, sched_due)
         VALUES (@app, @id, @kind, @targets, @payload, @ttl, @urgency, @topic, @createdAt, @deliverAt, @expiresAt, @status, @schedDue)`,
      ),
      insertDelivery: db.prepare('INSERT OR IGNORE INTO deliveries (app_id, publish_id, device_id, due_at) VALUES (?, ?, ?, ?)'),
      startPublish: db.prepare(
        `UPDATE publishes SET targeted = targeted + @added + @skipped, skipped_online = skipped_online + @skipped, pending = pending + @added,
           status = CASE WHEN pending + @added > 0 THEN 'delivering' ELSE 'done' END,
           finished_at = CASE WHEN pending + @added > 0 THEN NULL ELSE @now END,
           sched_due = NULL, sched_leased = 0
         WHERE app_id = @app AND publish_id = @id`,
      ),
      publish: db.prepare('SELECT * FROM publishes WHERE app_id = ? AND publish_id = ?'),
      claimScheduled: db.prepare(
        `UPDATE publishes SET sched_due = @leaseUntil, sched_leased = 1
         WHERE rowid IN (SELECT rowid FROM publishes WHERE app_id = @app AND status = 'scheduled' AND sched_due <= @now ORDER BY sched_due LIMIT @limit)
         RETURNING *`,
      ),
      claim: db.prepare(
        `UPDATE deliveries SET due_at = @leaseUntil, leased = 1
         WHERE rowid IN (SELECT rowid FROM deliveries WHERE app_id = @app AND state = 0 AND due_at <= @now ORDER BY due_at LIMIT @limit)
         RETURNING publish_id, device_id, attempts`,
      ),
      finishMany: db.prepare(
        `UPDATE deliveries SET state = @state, leased = 0
         WHERE app_id = @app AND publish_id = @publishId AND state = 0 AND device_id IN (SELECT value FROM json_each(@deviceIds))`,
      ),
      retry: db.prepare(
        'UPDATE deliveries SET attempts = attempts + 1, due_at = @nextAt, leased = 0 WHERE app_id = @app AND publish_id = @publishId AND device_id = @deviceId AND state = 0',
      ),
      release: db.prepare('UPDATE deliveries SET due_at = @now, leased = 0 WHERE app_id = @app AND publish_id = @publishId AND device_id = @deviceId AND state = 0'),
      count: db.prepare(
        `UPDATE publishes SET sent = sent + @sent, failed = failed + @failed, expired = expired + @expired, pending = pending - @done
         WHERE app_id = @app AND publish_id = @id`,
      ),
      maybeDone: db.prepare(
        "UPDATE publishes SET status = 'done', finished_at = @now WHERE app_id = @app AND publish_id = @id AND status = 'delivering' AND pending <= 0",
      ),
      reportRow: db.prepare(
        `SELECT r.device_id, r.reported FROM devices d JOIN deliveries r ON r.app_id = d.app_id AND r.device_id = d.device_id
         WHERE d.app_id = ? AND d.endpoint = ? AND r.publish_id = ?`,
      ),
      setReported: db.prepare('UPDATE deliveries SET reported = reported | @bits WHERE app_id = @app AND publish_id = @id AND device_id = @deviceId'),
      countReport: db.prepare('UPDATE publishes SET delivered = delivered + @delivered, opened = opened + @opened WHERE app_id = @app AND publish_id = @id'),
      nextDelivery: db.prepare('SELECT MIN(due_at) AS t FROM deliveries WHERE app_id = ? AND state = 0'),
      nextScheduled: db.prepare("SELECT MIN(sched_due) AS t FROM publishes WHERE app_id = ? AND status = 'scheduled'"),
      pruneDeliveries: db.prepare(
        "DELETE FROM deliveries WHERE app_id = @app AND publish_id IN (SELECT publish_id FROM publishes WHERE app_id = @app AND status = 'done' AND finished_at < @before)",
      ),
      prunePublishes: db.prepare("DELETE FROM publishes WHERE app_id = @app AND status = 'done' AND finished_at < @before"),
    };
  }

  // ---------------------------------------------------------------- VAPID keys

  async vapidKeys(appId: string): Promise<StoredVapidKey[]> {
    const rows = this.s.keys.all(appId) as { key_id: string; public_key: string; private_key: string; created_at: number; current: number }[];
    return rows.map((r) => ({ id: r.key_id, publicKey: r.public_key, privateKey: r.private_key, createdAt: r.created_at, current: r.current === 1 }));
  }

  async initVapidKey(appId: string, key: Omit<StoredVapidKey, 'current'>): Promise<void> {
    this.conn.transaction(() => {
      if (this.s.hasCurrentKey.get(appId)) return;
      this.s.insertKey.run(appId, key.id, key.publicKey, key.privateKey, key.createdAt);
      this.s.setCurrent.run(appId, key.id);
    })();
  }

  async useVapidKey(appId: string, key: Omit<StoredVapidKey, 'current'>): Promise<void> {
    this.conn.transaction(() => {
      this.s.insertKey.run(appId, key.id, key.publicKey, key.privateKey, key.createdAt);
      this.s.clearCurrent.run(appId);
      this.s.setCurrent.run(appId, key.id);
    })();
  }

  // ---------------------------------------------------------------- devices

  async registerDevice(appId: string, d: NewDevice): Promise<{ deviceId: string; created: boolean }> {
    return this.conn.transaction(() => {
      const found = this.s.deviceByEndpoint.get(appId, d.endpoint) as { device_id: string } | undefined;
      const deviceId = found?.device_id ?? d.id;
      if (found) this.s.updateDevice.run(d.p256dh, d.auth, d.keyId, d.now, appId, deviceId);
      else this.s.insertDevice.run(appId, deviceId, d.endpoint, d.p256dh, d.auth, d.keyId, d.now, d.now);
      if (d.interests) this.replaceInterests(appId, deviceId, d.interests);
      return { deviceId, created: !found };
    })();
  }

  private replaceInterests(appId: string, deviceId: string, interests: string[]): void {
    this.s.clearInterests.run(appId, deviceId);
    for (const i of interests) this.s.addInterest.run(appId, deviceId, i);
  }

  async renewSubscription(appId: string, deviceId: string, oldEndpoint: string, sub: RenewedSubscription): Promise<RenewResult> {
    return this.conn.transaction((): RenewResult => {
      const current = this.s.device.get(appId, deviceId) as DeviceRow | undefined;
      if (!current || current.endpoint !== oldEndpoint) return 'missing';
      const owner = this.s.deviceByEndpoint.get(appId, sub.endpoint) as { device_id: string } | undefined;
      if (owner && owner.device_id !== deviceId) return 'conflict';
      this.s.renewDevice.run(sub.endpoint, sub.p256dh, sub.auth, sub.keyId, sub.now, appId, deviceId);
      return 'ok';
    })();
  }

  async device(appId: string, deviceId: string): Promise<DeviceRecord | null> {
    const r = (this.s.device.get(appId, deviceId) as DeviceRow | undefined);
    return r ? toDevice(r) : null;
  }

  async deleteDevice(appId: string, deviceId: string): Promise<boolean> {
    return this.conn.transaction(() => this.removeDevice(appId, deviceId))();
  }

  private removeDevice(appId: string, deviceId: string): boolean {
    this.s.clearInterests.run(appId, deviceId);
    return this.s.deleteDevice.run(appId, deviceId).changes > 0;
  }

  async interests(appId: string, deviceId: string): Promise<string[] | null> {
    if (!this.s.device.get(appId, deviceId)) return null;
    return (this.s.interests.all(appId, deviceId) as { interest: string }[]).map((r) => r.interest);
  }

  async setInterests(appId: string, deviceId: string, interests: string[]): Promise<boolean> {
    return this.conn.transaction(() => {
      if (!this.s.device.get(appId, deviceId)) return false;
      this.replaceInterests(appId, deviceId, interests);
      return true;
    })();
  }

  async addInterest(appId: string, deviceId: string, interest: string, max: number): Promise<AddInterestResult> {
    return this.conn.transaction((): AddInterestResult => {
      if (!this.s.device.get(appId, deviceId)) return 'missing';
      if (this.s.hasInterest.get(appId, deviceId, interest)) return 'exists';
      if ((this.s.interestCount.get(appId, deviceId) as { n: number }).n >= max) return 'full';
      this.s.addInterest.run(appId, deviceId, interest);
      return 'added';
    })();
  }

  async removeInterest(appId: string, deviceId: string, interest: string): Promise<boolean> {
    return this.conn.transaction(() => {
      if (!this.s.device.get(appId, deviceId)) return false;
      this.s.removeInterest.run(appId, deviceId, interest);
      return true;
    })();
  }

  async setUser(appId: string, deviceId: string, userId: string): Promise<SetUserResult> {
    return this.conn.transaction((): SetUserResult => {
      const r = this.s.device.get(appId, deviceId) as DeviceRow | undefined;
      if (!r) return 'missing';
      if (r.user_id !== null && r.user_id !== userId) return 'conflict';
      this.s.setUser.run(userId, Date.now(), appId, deviceId);
      return 'ok';
    })();
  }

  async deleteUser(appId: string, userId: string): Promise<number> {
    return this.conn.transaction(() => {
      const ids = (this.s.userDevices.all(appId, userId) as { device_id: string }[]).map((r) => r.device_id);
      for (const id of ids) this.removeDevice(appId, id);
      return ids.length;
    })();
  }

  async devicesForInterests(appId: string, interests: string[]): Promise<string[]> {
    if (interests.length === 0) return [];
    return ((this.s.devicesForInterests.all(appId, JSON.stringify(interests)) as { device_id: string }[])).map((r) => r.device_id);
  }

  async devicesForUsers(appId: string, userIds: string[]): Promise<string[]> {
    if (userIds.length === 0) return [];
    return ((this.s.devicesForUsers.all(appId, JSON.stringify(userIds)) as { device_id: string }[])).map((r) => r.device_id);
  }

  // ---------------------------------------------------------------- publishes and deliveries

  async createPublish(appId: string, p: PublishRecord, audience: { deviceIds: string[]; skippedOnline: number } | null): Promise<void> {
    this.conn.transaction(() => {
      this.s.insertPublish.run({
        app: appId,
        id: p.id,
        kind: p.kind,
        targets: JSON.stringify(p.targets),
        payload: p.payload,
        ttl: p.ttl,
        urgency: p.urgency ?? null,
        topic: p.topic ?? null,
        createdAt: p.createdAt,
        deliverAt: p.deliverAt,
        expiresAt: p.expiresAt,
        status: 'scheduled',
        schedDue: audience ? null : p.deliverAt,
      });
      if (audience) this.addRows(appId, p.id, audience.deviceIds, audience.skippedOnline, p.deliverAt, p.createdAt);
    })();
  }

  /** Inserts the rows of a publish and moves it to `delivering` (or straight to `done` when empty). */
  private addRows(appId: string, publishId: string, deviceIds: string[], skipped: number, dueAt: number, now: number): void {
    let added = 0;
    for (const id of deviceIds) added += this.s.insertDelivery.run(appId, publishId, id, dueAt).changes;
    this.s.startPublish.run({ app: appId, id: publishId, added, skipped, now });
  }

  async claimScheduled(appId: string, now: number, limit: number, leaseUntil: number): Promise<PublishRecord[]> {
    const rows = (this.s.claimScheduled.all({ app: appId, now, limit, leaseUntil }) as PublishRow[]);
    return rows.map(toPublish);
  }

  async expandPublish(appId: string, publishId: string, deviceIds: string[], now: number): Promise<void> {
    this.conn.transaction(() => {
      const r = this.s.publish.get(appId, publishId) as PublishRow | undefined;
      if (!r || r.status !== 'scheduled') return;
      this.addRows(appId, publishId, deviceIds, 0, now, now);
    })();
  }

  async publish(appId: string, publishId: string): Promise<PublishStatus | null> {
    const r = (this.s.publish.get(appId, publishId) as PublishRow | undefined);
    if (!r) return null;
    return {
      ...toPublish(r),
      status: r.status as PublishStatus['status'],
      targeted: r.targeted,
      sent: r.sent,
      skippedOnline: r.skipped_online,
      expired: r.expired,
      failed: r.failed,
      pending: r.pending,
      delivered: r.delivered,
      opened: r.opened,
    };
  }

  async claimDeliveries(appId: string, now: number, limit: number, leaseUntil: number): Promise<ClaimedDelivery[]> {
    const db = this.conn;
    return db.transaction(() => {
      const rows = this.s.claim.all({ app: appId, now, limit, leaseUntil }) as { publish_id: string; device_id: string; attempts: number }[];
      if (rows.length === 0) return [];
      // The batch's devices in one statement, not one lookup per row: each statement costs more than the
      // row it reads, and a push send is only ~300 µs in all.
      const ids = JSON.stringify([...new Set(rows.map((r) => r.device_id))]);
      const devices = new Map((this.s.devicesIn.all(appId, ids) as DeviceRow[]).map((d) => [d.device_id, d]));
      return rows.map((r): ClaimedDelivery => {
        const d = devices.get(r.device_id);
        return { publishId: r.publish_id, deviceId: r.device_id, attempts: r.attempts, device: d ? toDevice(d) : null };
      });
    })();
  }

  async finishDeliveries(appId: string, results: DeliveryResult[], now: number): Promise<void> {
    if (results.length === 0) return;
    this.conn.transaction(() => {
      // Rows that end the same way for the same publish are finished by one statement, whose `changes` (the
      // rows still pending, so a result recorded twice counts once) is what the publish's counts move by.
      const groups = new Map<string, Map<'sent' | 'failed' | 'expired', string[]>>();
      for (const r of results) {
        if (r.outcome === 'retry') {
          this.s.retry.run({ app: appId, publishId: r.publishId, deviceId: r.deviceId, nextAt: r.nextAt });
          continue;
        }
        if (r.outcome === 'gone') this.removeDevice(appId, r.deviceId);
        const counted = r.outcome === 'gone' ? 'failed' : r.outcome;
        let byOutcome = groups.get(r.publishId);
        if (!byOutcome) groups.set(r.publishId, (byOutcome = new Map()));
        const ids = byOutcome.get(counted);
        if (ids) ids.push(r.deviceId);
        else byOutcome.set(counted, [r.deviceId]);
      }
      for (const [id, byOutcome] of groups) {
        const c = { sent: 0, failed: 0, expired: 0, done: 0 };
        for (const [outcome, ids] of byOutcome) {
          const changed = this.s.finishMany.run({ app: appId, publishId: id, state: STATE[outcome], deviceIds: JSON.stringify(ids) }).changes;
          c[outcome] += changed;
          c.done += changed;
        }
        if (c.done === 0) continue;
        this.s.count.run({ app: appId, id, ...c });
        this.s.maybeDone.run({ app: appId, id, now });
      }
    })();
  }

  async recordReport(appId: string, publishId: string, endpoint: string, report: PushReport): Promise<ReportCounted | null> {
    const bits = REPORT_BITS[report];
    return this.conn.transaction((): ReportCounted | null => {
      const row = this.s.reportRow.get(appId, endpoint, publishId) as { device_id: string; reported: number } | undefined;
      if (!row) return null;
      const added = bits & ~row.reported;
      if (added === 0) return 0;
      this.s.setReported.run({ app: appId, id: publishId, deviceId: row.device_id, bits });
      this.s.countReport.run({ app: appId, id: publishId, delivered: added & COUNT_BIT.delivered ? 1 : 0, opened: added & COUNT_BIT.opened ? 1 : 0 });
      return added;
    })();
  }

  async releaseDeliveries(appId: string, rows: { publishId: string; deviceId: string }[], now: number): Promise<void> {
    if (rows.length === 0) return;
    this.conn.transaction(() => {
      for (const r of rows) this.s.release.run({ app: appId, publishId: r.publishId, deviceId: r.deviceId, now });
    })();
  }

  async nextDueAt(appId: string): Promise<number | null> {
    const a = ((this.s.nextDelivery.get(appId) as { t: number | null })).t;
    const b = (this.s.nextScheduled.get(appId) as { t: number | null }).t;
    if (a === null) return b;
    return b === null ? a : Math.min(a, b);
  }

  async prune(appId: string, before: number): Promise<void> {
    this.conn.transaction(() => {
      this.s.pruneDeliveries.run({ app: appId, before });
      this.s.prunePublishes.run({ app: appId, before });
    })();
  }

  async pruneIdleDevices(appId: string, before: number, limit: number): Promise<string[]> {
    return this.conn.transaction(() => {
      const ids = (this.s.idleDevices.all(appId, before, limit) as { device_id: string }[]).map((r) => r.device_id);
      for (const id of ids) this.removeDevice(appId, id);
      return ids;
    })();
  }
}

/** Schema reference for the docs (tables as created). */
export const SQLITE_PUSH_SCHEMA = SCHEMA;
