/**
 * Opening a SQLite file that belongs to one node: the push store (`push.sqlite`) and the webhook journal
 * (`webhooks.sqlite`) in the data directory.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/**
 * WAL with `synchronous = NORMAL` (a commit survives a process crash; the last moments may be lost on a
 * power cut), and an exclusive lock held until close. The empty transaction takes the lock at once, so a
 * second process on the same file fails here rather than at its first write.
 */
const SETTINGS = `
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA locking_mode = EXCLUSIVE;
BEGIN EXCLUSIVE; COMMIT;
`;

/**
 * Opens (creating it, and its directory, if need be) a node's SQLite file, readable by this user only: it
 * holds VAPID private keys or user data. Runs `schema`, then `init` (reads, repairs) inside the same
 * try, so a failure closes the file. Another process holding the file fails with "`what` … is in use by
 * another Herald process" plus `hint`.
 */
export function openNodeSqlite<T>(file: string, what: string, schema: string, init: (db: Database.Database) => T, hint = ''): { db: Database.Database; result: T } {
  mkdirSync(dirname(file), { recursive: true });
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  const db = new Database(file, { timeout: 2000 });
  try {
    db.exec(SETTINGS);
    db.exec(schema);
    return { db, result: init(db) };
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new Error(`${what} ${file} is in use by another Herald process: one node per data directory${hint}`);
    }
    throw err;
  }
}
