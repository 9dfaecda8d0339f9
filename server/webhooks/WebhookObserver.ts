/**
 * Turns what the gateway reports into Pusher webhook events (protocol.md §4) and hands them to the
 * sender.
 *
 * Debounce: `channel_vacated` and `member_removed` wait `debounceMs` (3 s) and are dropped when the channel
 * is re-occupied or the user rejoins meanwhile; the `channel_occupied` / `member_added` of that rejoin is
 * dropped too, so a page reload sends nothing. The pending leave is a mark in the cluster state, not a
 * local timer alone. The state sets it in the same atomic step as the transition that vacated the channel
 * (removed the member), holding a fresh token, and the transition that fills it again takes it in the same
 * step (ClusterState's leave marks; the gateway asks `leaveMarkMs` how long to keep it): a rejoin on any node
 * finds the mark, however soon after the leave it comes. After the delay the leave's node takes its own
 * mark back and sends the leave if it was still there. ClusterState reports each transition to exactly one
 * node and each mark is taken by exactly one caller, so each webhook is sent once per cluster.
 *
 * Transitions the state finds by itself (a dead node's cleanup, a restore after an outage) carry their marks
 * the same way (ClusterState.setLeaveMarks). A transition reported without one (a gateway with no
 * LeaveMarks installed) falls back to separate calls: this observer sets the mark, and a join takes it.
 *
 * Order: events of one channel are handed to the sender in the order the gateway reported them on this
 * node. Mark operations are asynchronous (Redis), so a channel with one in progress queues its later
 * events behind it; a channel without one costs no promise.
 *
 * Occupancy (single node only, with a journal): what the receivers were told is occupied is kept in the
 * journal, a row per channel and per presence member whose leave they are owed. A join that is not
 * cancelled out writes the row, a leave queued after its delay removes it, in the same group commit as the
 * leave itself; a leave cancelled by a rejoin keeps it. Rows left at the next start are the leaves the
 * previous run never sent (a crash cut its sockets off, or ended it inside a leave's delay): `start`
 * queues them before the gateway takes connections. A cluster needs none of this: the surviving nodes send
 * a dead node's leaves (ClusterState's dead-node claim), so a restarted member must not send them again.
 *
 * Two nodes, two races:
 * - leave → rejoin → leave across nodes: the first leave's timer must not send the second leave early. Each
 *   mark holds its leave's token, and a timer takes only its own mark (a join takes any).
 * - on the fallback path, a join that reaches the state between a leave and the mark this observer sets for
 *   it finds nothing to cancel and is sent; the leave, when its delay ends, would then tell the receivers
 *   the channel is empty (or the member gone) while it is not. So a leave is sent only if the channel is
 *   still vacant (the member still absent) at that moment. The receivers then hear the join twice, and end
 *   up right. Leaves whose marks the state sets atomically never meet this.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatewayObserver, LeaveMarks } from '../GatewayObserver';
import type { AppOptions, WebhookEventType } from '../options/Options';
import { markId, type ClusterState, type MarkKey } from '../state/ClusterState';
import { WebhookSender, type WebhookReporting, type WebhookSenderOptions, type WebhookStats } from './WebhookSender';
import type { WebhookEvent } from './webhook-request';
import type { WebhookJournal } from './WebhookJournal';

/** Internal tuning (tests shorten the delays); production uses the defaults. */
export interface WebhookSettings extends WebhookSenderOptions {
  /** How long `channel_vacated` and `member_removed` wait for a rejoin. */
  debounceMs?: number;
  /** Where queued events survive a restart (HeraldServer picks it from the options); null: memory only. */
  journal?: WebhookJournal | null;
  /**
   * Keep occupancy in the journal and send at start what an earlier run left (see the module comment).
   * HeraldServer sets it on a single node (LocalState) only.
   */
  trackOccupancy?: boolean;
}

/** A mark outlives its timer by this much, so a late timer (busy event loop, slow Redis) still finds it. */
const MARK_SLACK_MS = 10_000;

interface PendingLeave {
  timer: NodeJS.Timeout;
  fireAt: number;
  fire: () => void;
  /** Resolves once the leave was decided (sent, dropped or cancelled). */
  done: Promise<void>;
  resolve: () => void;
}

/** The gateway observer that sends an app's webhooks; `stop()` before the cluster state stops. */
export class WebhookObserver implements GatewayObserver, LeaveMarks {
  readonly sender: WebhookSender;
  private readonly debounceMs: number;
  /** markId(…) → this node's timer for a pending leave. */
  private readonly pending = new Map<string, PendingLeave>();
  /** `${appId}\n${channel}` → tail of the channel's queued work, while some is in progress. */
  private readonly chains = new Map<string, Promise<void>>();
  private stopped = false;
  private readonly trackOccupancy: boolean;
  /** Tokens for the marks this observer sets itself: unique in the cluster (see the module comment). */
  private readonly tokenPrefix = randomUUID().slice(0, 13);
  private tokens = 0;

  constructor(
    private readonly state: ClusterState,
    private readonly log: Logger,
    settings: WebhookSettings = {},
    reporting: WebhookReporting = {},
  ) {
    this.debounceMs = settings.debounceMs ?? 3000;
    this.trackOccupancy = settings.trackOccupancy ?? false;
    this.sender = new WebhookSender(log, settings, reporting, settings.journal ?? null);
  }

  /**
   * Queues again what the journal kept from an earlier run (see `WebhookSender.start`), then the leaves of
   * the occupancy it left (single node); before events arrive.
   */
  async start(appById: (id: string) => AppOptions | undefined): Promise<void> {
    await this.sender.start(appById);
    this.sendLeftLeaves(appById);
  }

  stats(): WebhookStats {
    return this.sender.stats();
  }

  /** LeaveMarks: a leave this observer will wait on keeps its mark for the delay and some slack. */
  leaveMarkMs(app: AppOptions, channel: string, leave: 'channel_vacated' | 'member_removed'): number {
    return this.relevant(app, channel) && this.sender.wants(app, leave, channel) ? this.debounceMs + MARK_SLACK_MS : 0;
  }

  channelOccupied(app: AppOptions, channel: string, rejoined?: boolean): void {
    if (!this.relevant(app, channel)) return;
    this.join(app, channel, { channel, userId: null }, 'channel_vacated', { name: 'channel_occupied', channel }, rejoined);
  }

  channelVacated(app: AppOptions, channel: string, mark?: string): void {
    if (!this.relevant(app, channel)) return;
    this.leave(app, channel, { channel, userId: null }, { name: 'channel_vacated', channel }, mark);
  }

  memberAdded(app: AppOptions, channel: string, userId: string, rejoined?: boolean): void {
    if (!this.relevant(app, channel)) return;
    this.join(app, channel, { channel, userId }, 'member_removed', { name: 'member_added', channel, user_id: userId }, rejoined);
  }

  memberRemoved(app: AppOptions, channel: string, userId: string, mark?: string): void {
    if (!this.relevant(app, channel)) return;
    this.leave(app, channel, { channel, userId }, { name: 'member_removed', channel, user_id: userId }, mark);
  }

  clientEvent(app: AppOptions, channel: string, event: string, data: string, socketId: string, userId?: string): void {
    if (!this.relevant(app, channel)) return;
    const e: WebhookEvent = { name: 'client_event', channel, event, data, socket_id: socketId };
    if (userId !== undefined) e.user_id = userId;
    this.send(app, e);
  }

  cacheMiss(app: AppOptions, channel: string): void {
    if (!this.relevant(app, channel)) return;
    this.send(app, { name: 'cache_miss', channel });
  }

  subscriptionCount(app: AppOptions, channel: string, count: number): void {
    if (!this.relevant(app, channel)) return;
    this.send(app, { name: 'subscription_count', channel, subscription_count: count });
  }

  /**
   * Decides pending leaves now when the grace period would end before their delay (so they can still be
   * sent), waits for the others, then lets the sender drain until `deadline` (epoch ms). Call before the
   * cluster state stops: deciding a leave takes its mark.
   */
  async stop(deadline: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const now = Date.now();
    const cutoff = now + (deadline - now) / 2;
    for (const p of [...this.pending.values()]) {
      if (p.fireAt > cutoff) {
        clearTimeout(p.timer);
        p.fire();
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const settled = async () => {
      while (this.pending.size > 0 || this.chains.size > 0) {
        await Promise.race([...[...this.pending.values()].map((p) => p.done), ...this.chains.values()]);
      }
    };
    await Promise.race([settled(), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
    clearTimeout(timer);
    if (this.pending.size > 0) {
      // Their occupancy rows stay: the next start sends them (they were not sent now).
      if (this.occupancy) this.log.warn({ leaves: this.pending.size }, 'webhook leaves still pending at shutdown were not sent; the next start sends them');
      else this.log.warn({ leaves: this.pending.size }, 'webhook leaves still pending at shutdown were dropped');
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.resolve();
      }
      this.pending.clear();
    }
    await this.sender.stop(deadline);
  }

  /** The journal that keeps occupancy, when this node keeps it (and once it is open). */
  private get occupancy(): WebhookJournal | null {
    return this.trackOccupancy ? this.sender.openJournal : null;
  }

  /**
   * Queues `member_removed` and `channel_vacated` for every occupancy row an earlier run left (per channel
   * its members first, as Pusher sends them), created now, and clears the rows in the same commit.
   */
  private sendLeftLeaves(appById: (id: string) => AppOptions | undefined): void {
    const journal = this.occupancy;
    if (!journal) return;
    const counts = new Map<string, { channels: number; members: number }>();
    for (const row of journal.leftOccupancy()) {
      const app = appById(row.appId);
      if (app) this.sender.enqueue(app, row.userId === null ? { name: 'channel_vacated', channel: row.channel } : { name: 'member_removed', channel: row.channel, user_id: row.userId });
      journal.vacate(row.appId, row.channel, row.userId);
      let c = counts.get(row.appId);
      if (!c) counts.set(row.appId, (c = { channels: 0, members: 0 }));
      if (row.userId === null) c.channels++;
      else c.members++;
    }
    for (const [app, c] of counts) {
      this.log.warn({ app, ...c }, 'occupied channels and members left by the previous run (a crash): queuing their channel_vacated / member_removed');
    }
  }

  /** Only apps with targets, and never Pusher-internal `#` channels. */
  private relevant(app: AppOptions, channel: string): boolean {
    return !this.stopped && app.webhooks.length > 0 && !channel.startsWith('#');
  }

  /** Sends at once unless earlier work of the channel is still in progress, then after it. */
  private send(app: AppOptions, event: WebhookEvent): void {
    if (!this.sender.wants(app, event.name, event.channel)) return;
    this.inOrder(app, event.channel, () => this.sender.enqueue(app, event));
  }

  /**
   * A leave (`channel_vacated`, `member_removed`): its mark is in the cluster state (set with the transition,
   * under `marked`; or, without one, set here now), and after the delay the leave is sent if the mark is still
   * there (no join took it).
   */
  private leave(app: AppOptions, channel: string, mark: MarkKey, event: WebhookEvent, marked?: string): void {
    if (!this.sender.wants(app, event.name, channel)) return;
    const key = markId(app.id, mark.channel, mark.userId);
    this.cancel(key);
    const token = marked ?? this.setOwnMark(app, channel, mark);
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const fire = () => {
      if (this.pending.get(key) === entry) this.pending.delete(key);
      this.serial(app, channel, async () => {
        try {
          if (!(await this.state.takeMark(app.id, mark, token))) return;
          if (!(await this.stillLeft(app, event))) {
            // Rejoined before this leave's mark was set (see the module comment): the join was sent, and the
            // receivers' view is right without the leave. Its occupancy row stays: a leave is still owed.
            this.log.debug({ app: app.id, channel, event: event.name }, 'webhook leave dropped: rejoined meanwhile (join already sent)');
            return;
          }
          if (this.sender.enqueue(app, event)) this.occupancy?.vacate(app.id, channel, memberOf(event));
        } finally {
          resolve();
        }
      });
    };
    const entry: PendingLeave = { timer: setTimeout(fire, this.debounceMs), fireAt: Date.now() + this.debounceMs, fire, done, resolve };
    entry.timer.unref();
    this.pending.set(key, entry);
  }

  /** The fallback path: sets a leave's mark with a call of its own, after the channel's earlier work. */
  private setOwnMark(app: AppOptions, channel: string, mark: MarkKey): string {
    const token = `${this.tokenPrefix}:${++this.tokens}`;
    this.serial(app, channel, () => this.state.setMark(app.id, mark, token, this.debounceMs + MARK_SLACK_MS));
    return token;
  }

  /**
   * A join (`channel_occupied`, `member_added`): if it took the mark of a pending leave (with the transition,
   * `rejoined`; or, without one, here now), the two cancel out and neither is sent (the occupancy row stays:
   * the receivers never heard of the leave); otherwise the receivers are owed its leave from now on, and the
   * row is written.
   */
  private join(app: AppOptions, channel: string, mark: MarkKey, leaveName: WebhookEventType, event: WebhookEvent, rejoined?: boolean): void {
    const wantsJoin = this.sender.wants(app, event.name, channel);
    // Without targets for the leave no mark is ever set: nothing to take.
    if (!this.sender.wants(app, leaveName, channel)) {
      if (wantsJoin) this.send(app, event);
      return;
    }
    const key = markId(app.id, mark.channel, mark.userId);
    const decide = (took: boolean) => {
      if (took) return this.cancel(key);
      if (wantsJoin) this.sender.enqueue(app, event);
      this.occupancy?.occupy(app.id, channel, memberOf(event));
    };
    if (rejoined === undefined) this.serial(app, channel, async () => decide(await this.state.takeMark(app.id, mark)));
    else this.inOrder(app, channel, () => decide(rejoined));
  }

  /** Whether what a leave reports is still true in the cluster: the channel empty, the member gone. */
  private async stillLeft(app: AppOptions, event: WebhookEvent): Promise<boolean> {
    if (event.name === 'member_removed') return !(await this.state.isMember(app.id, event.channel, event.user_id));
    return (await this.state.subscriberCount(app.id, event.channel)) === 0;
  }

  /** Forgets this node's timer for a leave that will not be sent. */
  private cancel(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(key);
    p.resolve();
  }

  /** Runs `task` now, or after the channel's queued work when it has some (events keep their order). */
  private inOrder(app: AppOptions, channel: string, task: () => void): void {
    if (this.chains.has(`${app.id}\n${channel}`)) this.serial(app, channel, task);
    else task();
  }

  /** Runs `task` after the channel's earlier work; one catch per task, logged with its context. */
  private serial(app: AppOptions, channel: string, task: () => unknown): void {
    const key = `${app.id}\n${channel}`;
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next: Promise<void> = prev
      .then(async () => void (await task()))
      .catch((err: unknown) => this.log.error({ err, app: app.id, channel }, 'webhook debounce failed (cluster state)'))
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      });
    this.chains.set(key, next);
  }
}

/** The member a `member_added` / `member_removed` is about; null for the channel's own events. */
function memberOf(event: WebhookEvent): string | null {
  return event.name === 'member_added' || event.name === 'member_removed' ? event.user_id : null;
}
