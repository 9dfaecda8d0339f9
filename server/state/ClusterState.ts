/**
 * Shared state that must be right across every node: connection quotas, channel occupancy and counts,
 * presence members, signed-in users, cache-channel events, rate limits and webhook debounce marks.
 * REST queries read it directly; nothing is gathered by asking other nodes.
 *
 * Guarantees every implementation keeps:
 * - Each mutation is atomic, and each transition is reported to exactly one caller in the cluster:
 *   `occupied` to the subscribe that took a channel from 0 to 1, `vacated` to the unsubscribe that took it
 *   to 0, `added` to the first socket of a user in a presence channel, `removed` after its last, `first`
 *   and `last` likewise for signed-in users. Webhooks rely on this to be sent once per cluster.
 * - Counts are per socket: a user with three sockets in a presence channel is one member with count 3.
 * - Work per call is O(1) in the size of the channel, except `members`, `channels` and `onlineUsers`,
 *   which return what they are asked for.
 * - Leave marks (webhook debounce, see WebhookObserver): called with `markMs` > 0, the unsubscribe that
 *   vacates a channel (the leave that removes a member) sets the channel's (member's) mark in the same
 *   atomic step, holding a fresh token, for `markMs`; the subscribe that occupies it (the join that adds the
 *   member) takes any such mark in the same step. So a rejoin on any node finds the mark of the leave it
 *   follows: there is no moment between a leave and its mark.
 */
import type { FramePieces } from '../ws/frame';

export interface SubscriberChange {
  /** Subscriptions to the channel across the cluster after this change. */
  count: number;
  /** True on exactly one of the subscribes that made the channel occupied (0 → 1). */
  occupied: boolean;
  /** True on exactly one of the unsubscribes that emptied the channel (1 → 0). */
  vacated: boolean;
  /** With `markMs`, on the unsubscribe that vacated the channel: the token of the mark set with it. */
  mark: string | null;
  /** With `markMs`, on the subscribe that occupied the channel: it took a pending leave's mark. */
  rejoined: boolean;
}

export interface MemberJoin {
  /** The user's first socket in this channel anywhere: announce `member_added`. */
  added: boolean;
  /** Refused: the channel already holds `max` other users. Nothing was changed. */
  full: boolean;
  /** With `markMs`, on the join that added the member: it took the mark of the member's pending leave. */
  rejoined: boolean;
}

export interface MemberLeave {
  /** The user's last socket in this channel anywhere is gone: announce `member_removed`. */
  removed: boolean;
  /** With `markMs`, when removed: the token of the mark set with it. */
  mark: string | null;
}

/** How long a leave's mark must last for this app and channel, 0 for none (the webhook observer decides). */
export type LeaveMarkMs = (appId: string, channel: string, leave: 'channel_vacated' | 'member_removed') => number;

/** What a debounce mark is about: a channel's pending `channel_vacated`, or a member's `member_removed`. */
export interface MarkKey {
  channel: string;
  /** null: the channel's own mark. */
  userId: string | null;
}

/**
 * A mark as one string, for maps keyed by mark: channel names cannot hold a newline, so a channel's own mark
 * (two parts) never collides with a member's (three).
 */
export function markId(appId: string, channel: string, userId: string | null): string {
  return userId === null ? `${appId}\n${channel}` : `${appId}\n${channel}\n${userId}`;
}

export interface CachedEvent {
  /** The encoded frame as it was published. */
  frame: string;
  /** Seconds left before it expires. */
  ttl: number;
}

export interface ClusterState {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  healthy(): boolean;

  /** Counts a connection; returns false and counts nothing when `max` ≥ 0 connections exist already. */
  addConnection(appId: string, max: number): Promise<boolean>;
  removeConnection(appId: string): Promise<void>;
  connectionCount(appId: string): Promise<number>;

  /** `markMs` > 0: take the channel's leave mark if this occupies it (see the module comment). */
  addSubscriber(appId: string, channel: string, markMs?: number): Promise<SubscriberChange>;
  /** `markMs` > 0: set the channel's leave mark for that long if this vacates it. */
  removeSubscriber(appId: string, channel: string, markMs?: number): Promise<SubscriberChange>;
  subscriberCount(appId: string, channel: string): Promise<number>;
  /** Occupied channels whose name starts with `prefix`, with their subscription counts. */
  channels(appId: string, prefix: string): Promise<Map<string, number>>;

  /**
   * Adds one socket of `userId`; `info` is the member's `user_info` as JSON text. `markMs` > 0: take the
   * member's leave mark if this adds the member.
   */
  addMember(appId: string, channel: string, userId: string, info: string, max: number, markMs?: number): Promise<MemberJoin>;
  /** Removes one socket of `userId`. `markMs` > 0: set the member's leave mark if this was its last socket. */
  removeMember(appId: string, channel: string, userId: string, markMs?: number): Promise<MemberLeave>;
  /** user id → `user_info` JSON text. */
  members(appId: string, channel: string): Promise<Map<string, string>>;
  memberCount(appId: string, channel: string): Promise<number>;
  /** Whether `userId` is a member of the presence channel now, on any node. */
  isMember(appId: string, channel: string, userId: string): Promise<boolean>;
  /**
   * The presence channel's `pusher_internal:subscription_succeeded` frame, every member included. It lives
   * here because only the state knows when membership changed: LocalState keeps it up to date as members
   * come and go, so a join into a big channel does not re-encode every member, and hands it out as frame
   * pieces over the bytes it keeps; RedisState builds it as text from the member hash it has to read anyway.
   */
  presenceSubscribedFrame(appId: string, channel: string): Promise<string | FramePieces>;

  /** Counts a signed-in socket; true when it is the user's first anywhere. */
  addUser(appId: string, userId: string): Promise<boolean>;
  /** Uncounts a signed-in socket; true when it was the user's last anywhere. */
  removeUser(appId: string, userId: string): Promise<boolean>;
  /** Which of `userIds` have a signed-in socket anywhere. */
  onlineUsers(appId: string, userIds: string[]): Promise<Set<string>>;

  setCache(appId: string, channel: string, frame: string, ttlSeconds: number): Promise<void>;
  getCache(appId: string, channel: string): Promise<CachedEvent | null>;

  /**
   * Takes `cost` tokens from a per-second budget of `limit`; returns 0 when allowed, else the seconds to
   * wait. Budgets are shared by the cluster.
   */
  takeRate(appId: string, bucket: string, limit: number, cost: number): Promise<number>;

  /**
   * For a state that finds transitions by itself (RedisState: a dead node's cleanup, a restore after an
   * outage): how long their leave marks last, so that those transitions set and take marks in the same
   * atomic step too, and report them (StateTransition's `mark` and `rejoined`).
   */
  setLeaveMarks?(fn: LeaveMarkMs): void;

  /**
   * Sets a debounce mark (e.g. a `channel_vacated` webhook waiting 3 s) that expires after `ttlMs`, for a
   * leave reported without one (a node of an earlier release, or a state that keeps no marks itself). The
   * mark holds `token`, so that the one who set it can later take it back and nobody else's mark with it.
   */
  setMark(appId: string, key: MarkKey, token: string, ttlMs: number): Promise<void>;
  /**
   * Removes a mark; true for the one caller that found it. With `token`, only a mark holding that token is
   * taken: a newer mark under the same key (set by a later leave, maybe on another node) stays.
   */
  takeMark(appId: string, key: MarkKey, token?: string): Promise<boolean>;

  /**
   * Web Push liveness: a socket that connected with `device_id` subscribed to `channel` (counted per
   * socket, like subscriptions). A device with a count anywhere is live on the channel and gets the event
   * over its socket instead of a push. A node that dies stops counting once its heartbeat expires.
   */
  addLiveDevice(appId: string, channel: string, deviceId: string): Promise<void>;
  /** Uncounts one socket of the device on the channel. */
  removeLiveDevice(appId: string, channel: string, deviceId: string): Promise<void>;
  /** Which of `deviceIds` are live on `channel` on any node (batch: one call per publish and channel). */
  liveDevices(appId: string, channel: string, deviceIds: string[]): Promise<Set<string>>;
}
