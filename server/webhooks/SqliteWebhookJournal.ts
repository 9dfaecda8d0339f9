/**
 * The webhook journal in one SQLite file in the data directory, beside the push store and configured like
 * it: WAL with `synchronous=NORMAL` (a commit survives a crash of the process; a power loss may take the
 * last commits, which `FULL` would keep at an fsync per commit), and an exclusive lock held until close, so
 * a second Herald on the same data directory fails at start-up instead of sending the same events.
 *
 * One table, one row per event and target, keyed by an id this class assigns in append order. Rows are
 * short-lived (most are removed a few milliseconds after they are written), so the table stays small.
 * A second, `webhook_occupancy`, holds a row per occupied channel (`user_id` '', which no member can have:
 * user ids are non-empty) and per presence member whose leave the receivers are owed.
 */
import type Database from 'better-sqlite3';
import { openNodeSqlite } from '../storage/node-sqlite';
import type { Logger } from 'pino';
import type { JournaledWebhook, OccupancyRow, WebhookJournal } from './WebhookJournal';
import type { WebhookEvent } from './webhook-request';

/** The journal's file name in the data directory. */
export const WEBHOOK_JOURNAL_FILE = 'webhooks.sqlite';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS webhook_events (
  id INTEGER PRIMARY KEY, app_id TEXT NOT NULL, target TEXT NOT NULL, channel TEXT NOT NULL,
  event TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_occupancy (
  app_id TEXT NOT NULL, channel TEXT NOT NULL, user_id TEXT NOT NULL,
  PRIMARY KEY (app_id, channel, user_id)
) WITHOUT ROWID;
`;

/** Per app and channel, its members first and the channel row ('') last: the order leaves are sent in. */
const LEFT_OCCUPANCY = "SELECT app_id, channel, user_id FROM webhook_occupancy ORDER BY app_id, channel, user_id = '', user_id";

/** A failed write is logged at most this often (a full disk would otherwise log every turn). */
const ERROR_LOG_EVERY_MS = 10_000;

interface Row {
  id: number;
  app_id: string;
  target: string;
  event: string;
  created_at: number;
}

interface OccupancyEntry {
  app_id: string;
  channel: string;
  user_id: string;
}

/** A buffered occupancy change: true writes the row, false deletes it. */
type OccupancyChanges = Map<string, { row: OccupancyEntry; occupied: boolean }>;

interface Append {
  appId: string;
  target: string;
  event: WebhookEvent;
  createdAt: number;
}

/** WebhookJournal in a local SQLite file (see the module comment). */
export class SqliteWebhookJournal implements WebhookJournal {
  /** Transactions written so far: tests check that writes are grouped. */
  commits = 0;
  private db: Database.Database | null = null;
  private write: ((appends: Map<number, Append>, removals: number[], occupancy: OccupancyChanges) => void) | null = null;
  private nextId = 1;
  /** Buffered until the end of the turn; a removal of a buffered append deletes it here instead. */
  private appends = new Map<number, Append>();
  private removals: number[] = [];
  /** Keyed by the row's JSON: the last change of a row in a turn wins. */
  private occupancy: OccupancyChanges = new Map();
  private left: OccupancyRow[] = [];
  private scheduled = false;
  private failedSinceLog = 0;
  private lastErrorLog = 0;

  constructor(
    readonly file: string,
    private readonly log: Logger,
  ) {}

  async open(): Promise<JournaledWebhook[]> {
    // Client events carry user data: the file is for this user only (openNodeSqlite).
    const { db, result: rows } = openNodeSqlite(this.file, 'webhook journal', SCHEMA, (db) => {
      const rows = db.prepare('SELECT id, app_id, target, event, created_at FROM webhook_events ORDER BY id').all() as Row[];
      const left = db.prepare(LEFT_OCCUPANCY).all() as OccupancyEntry[];
      this.left = left.map((r) => ({ appId: r.app_id, channel: r.channel, userId: r.user_id === '' ? null : r.user_id }));
      this.prepare(db);
      return rows;
    });
    this.db = db;
    this.nextId = (rows.at(-1)?.id ?? 0) + 1;
    return this.parse(rows);
  }

  append(appId: string, target: string, event: WebhookEvent, createdAt: number): number {
    const id = this.nextId++;
    this.appends.set(id, { appId, target, event, createdAt });
    this.schedule();
    return id;
  }

  remove(id: number): void {
    if (this.appends.delete(id)) return;
    this.removals.push(id);
    this.schedule();
  }

  leftOccupancy(): OccupancyRow[] {
    return [...this.left];
  }

  occupy(appId: string, channel: string, userId: string | null): void {
    this.change(appId, channel, userId, true);
  }

  vacate(appId: string, channel: string, userId: string | null): void {
    this.change(appId, channel, userId, false);
  }

  async close(): Promise<void> {
    this.flush();
    this.db?.close();
    this.db = null;
    this.write = null;
  }

  /** Writes what is buffered in one transaction (normally at the end of the turn; `close` calls it too). */
  flush(): void {
    if (!this.write || (this.appends.size === 0 && this.removals.length === 0 && this.occupancy.size === 0)) return;
    const { appends, removals, occupancy } = this;
    this.appends = new Map();
    this.removals = [];
    this.occupancy = new Map();
    try {
      this.write(appends, removals, occupancy);
      this.commits++;
    } catch (err) {
      this.failed(err, appends.size, removals.length + occupancy.size);
    }
  }

  private change(appId: string, channel: string, userId: string | null, occupied: boolean): void {
    const row = { app_id: appId, channel, user_id: userId ?? '' };
    this.occupancy.set(JSON.stringify([appId, channel, row.user_id]), { row, occupied });
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private prepare(db: Database.Database): void {
    const insert = db.prepare('INSERT INTO webhook_events (id, app_id, target, channel, event, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    const del = db.prepare('DELETE FROM webhook_events WHERE id = ?');
    const occupy = db.prepare('INSERT OR IGNORE INTO webhook_occupancy (app_id, channel, user_id) VALUES (@app_id, @channel, @user_id)');
    const vacate = db.prepare('DELETE FROM webhook_occupancy WHERE app_id = @app_id AND channel = @channel AND user_id = @user_id');
    this.write = db.transaction((appends: Map<number, Append>, removals: number[], occupancy: OccupancyChanges) => {
      for (const [id, a] of appends) insert.run(id, a.appId, a.target, a.event.channel, JSON.stringify(a.event), a.createdAt);
      for (const id of removals) del.run(id);
      for (const { row, occupied } of occupancy.values()) (occupied ? occupy : vacate).run(row);
    });
  }

  /** The rows as events; a row that does not parse (never written by this class) is logged and deleted. */
  private parse(rows: Row[]): JournaledWebhook[] {
    const out: JournaledWebhook[] = [];
    for (const r of rows) {
      let event: WebhookEvent;
      try {
        event = JSON.parse(r.event) as WebhookEvent;
      } catch (err) {
        this.log.error({ err, file: this.file, id: r.id, app: r.app_id }, 'webhook journal row is not valid JSON; it is dropped');
        this.remove(r.id);
        continue;
      }
      out.push({ id: r.id, appId: r.app_id, target: r.target, event, createdAt: r.created_at });
    }
    return out;
  }

  /**
   * A write failed (disk full, I/O error): the events stay queued in memory and are still sent, but a crash
   * now would lose the appends and resend the removals (and the occupancy changes of that turn: a leave
   * already queued may then be sent again, a join's row be missing). Later writes are tried as usual.
   */
  private failed(err: unknown, appends: number, removals: number): void {
    this.failedSinceLog += appends + removals;
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_EVERY_MS) return;
    this.log.error(
      { err, file: this.file, appends, removals, changesLost: this.failedSinceLog },
      'webhook journal write failed: queued events are still sent, but a crash now would lose them',
    );
    this.lastErrorLog = now;
    this.failedSinceLog = 0;
  }
}
