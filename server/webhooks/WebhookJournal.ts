/**
 * Where a node keeps the webhook events it has queued, so a crash or a restart of that node does not lose
 * them. One implementation, SqliteWebhookJournal (a file in the data directory); `createWebhookJournal`
 * picks it from the options.
 *
 * A journal is local to its node: in a cluster each node journals the webhooks it queued itself (the node
 * that observed the transition), and a node that never comes back leaves its journal unsent.
 *
 * A single node (no Redis) also keeps its occupancy there: the channels and presence members whose leave
 * (`channel_vacated`, `member_removed`) the receivers are still owed, so the next start can send the
 * leaves of the sockets a crash cut off (WebhookObserver).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { configDefault } from '../options/config-default';
import type { HeraldOptions, WebhookTarget } from '../options/Options';
import { SqliteWebhookJournal, WEBHOOK_JOURNAL_FILE } from './SqliteWebhookJournal';
import type { WebhookEvent } from './webhook-request';

/** One event queued for one target whose outcome was not final when an earlier run of the node ended. */
export interface JournaledWebhook {
  /** Assigned by `append`: increasing in append order. */
  id: number;
  appId: string;
  /** The target's {@link webhookTargetKey}. */
  target: string;
  /** The event exactly as it is posted (re-signed, in a new body, when sent). */
  event: WebhookEvent;
  /** Epoch ms when the event was first queued: `maxAgeMs` counts from here across restarts. */
  createdAt: number;
}

/**
 * A channel (`userId` null) or a presence member whose join the receivers took in and whose leave they
 * were not sent yet.
 */
export interface OccupancyRow {
  appId: string;
  channel: string;
  userId: string | null;
}

/**
 * The durable copy of the webhook queues of one node, and of its occupancy (single node only).
 *
 * Guarantees:
 * - Group commit: `append` and `remove` only buffer (no I/O on the caller's path); what was buffered in
 *   one event-loop turn is written in one transaction right after that turn. `append` is called before the
 *   sender schedules the event's first request, so that request never goes out before the event is
 *   written (both run after the turn, the journal first).
 * - Durability: once written, an event survives a crash of the process. A crash loses at most the last
 *   turn's buffered work: its appends (events whose request had not been sent yet) and its removals (events
 *   then sent again after the restart).
 * - At least once, never at most once: an event is removed only after its outcome is final (delivered or
 *   given up), so a crash between a 2xx answer and the write of the removal sends the event again.
 * - Order: `open` returns the events in append order, so each channel's events come back in their order.
 * - Occupancy: `occupy` and `vacate` are buffered and written like `append` and `remove`, in the same
 *   transaction as the events of their turn, so a leave queued in a turn and its row's removal are written
 *   together or not at all. The last of several calls for one row in a turn wins.
 * - One process per journal: a second one on the same file fails in `open`.
 */
export interface WebhookJournal {
  /** Opens the journal; resolves with what an earlier run left, in append order. */
  open(): Promise<JournaledWebhook[]>;
  /** Buffers a queued event for one target; returns its id (for `remove`). */
  append(appId: string, target: string, event: WebhookEvent, createdAt: number): number;
  /** Buffers the removal of an event whose outcome is final; removing an unwritten append cancels it. */
  remove(id: number): void;
  /** The occupancy rows an earlier run left (read by `open`): per app and channel, its members before it. */
  leftOccupancy(): OccupancyRow[];
  /** Buffers a row: the receivers are now owed this channel's or member's leave. */
  occupy(appId: string, channel: string, userId: string | null): void;
  /** Buffers the removal of a row: its leave was queued (or is owed no more). */
  vacate(appId: string, channel: string, userId: string | null): void;
  /** Writes what is buffered, then closes; a no-op when not open. */
  close(): Promise<void>;
}

/**
 * A key that names a target across restarts: its url and the filters that decide which events it gets
 * (not its headers or `batch`, which change only how they are sent). A config change of url or filters
 * makes a new target; the old one's journaled events are then dropped, since nobody selected them.
 */
export function webhookTargetKey(target: WebhookTarget): string {
  const identity = JSON.stringify([target.url, [...target.events].sort(), target.channelPrefix ?? null, target.channelSuffix ?? null]);
  return createHash('sha256').update(identity).digest('base64url').slice(0, 22);
}

/**
 * The node's journal: SQLite in the data directory when `webhookJournal` is on and some app has webhook
 * targets (or a journal file is already there, to drop what is left for targets since removed); else null.
 */
export function createWebhookJournal(options: HeraldOptions, log: Logger): WebhookJournal | null {
  if (!(options.webhookJournal ?? configDefault('webhookJournal'))) return null;
  const file = join(options.dataDir, WEBHOOK_JOURNAL_FILE);
  if (!options.apps.some((a) => a.webhooks.length > 0) && !existsSync(file)) return null;
  return new SqliteWebhookJournal(file, log);
}
