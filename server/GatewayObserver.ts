import type { AppOptions } from './options/Options';
import type { Connection } from './ws/Connection';

/**
 * What the gateway reports to webhooks, metrics and the debug console. Every method is optional and called
 * synchronously; observers must not throw and must move slow work off this path. Transitions
 * (occupied/vacated, member added/removed) are reported by exactly one node of a cluster (ClusterState).
 */
export interface GatewayObserver {
  connectionOpened?(conn: Connection): void;
  connectionClosed?(conn: Connection, code: number): void;
  /** A connection was refused at the handshake (bad key, quota, origin…). */
  connectionRefused?(appId: string | null, code: number, reason: string): void;
  subscribed?(conn: Connection, channel: string): void;
  unsubscribed?(conn: Connection, channel: string): void;
  /**
   * `rejoined`: whether the state took a pending leave's mark with this transition (ClusterState's leave
   * marks). Absent when it was not asked to (no LeaveMarks for it, or a transition found by the state
   * itself: a dead node's cleanup, a restore).
   */
  channelOccupied?(app: AppOptions, channel: string, rejoined?: boolean): void;
  /** `mark`: the token of the leave mark the state set with this transition; absent as for `rejoined`. */
  channelVacated?(app: AppOptions, channel: string, mark?: string): void;
  memberAdded?(app: AppOptions, channel: string, userId: string, rejoined?: boolean): void;
  memberRemoved?(app: AppOptions, channel: string, userId: string, mark?: string): void;
  subscriptionCount?(app: AppOptions, channel: string, count: number): void;
  clientEvent?(app: AppOptions, channel: string, event: string, data: string, socketId: string, userId?: string): void;
  cacheMiss?(app: AppOptions, channel: string): void;
  /** A server event (REST) was published to these channels. */
  published?(app: AppOptions, channels: string[], event: string, data: string, socketId?: string): void;
  /** A frame arrived from a client, before it is parsed (hot path: count, do not inspect). */
  messageReceived?(conn: Connection, bytes: number): void;
  /** A frame was delivered to `count` local sockets. */
  delivered?(appId: string, channel: string, count: number, bytes: number): void;
  /** An error pusher:error / subscription error was sent to a client. */
  clientError?(conn: Connection, code: number | null, message: string): void;
}

/**
 * Who waits on leaves (the webhook observer's debounce): how long the cluster state must keep a leave's
 * mark for this app and channel, or 0 when nobody waits. The gateway passes it with each subscribe and
 * leave, so the mark is set and taken in the same atomic step as the transition (ClusterState).
 */
export interface LeaveMarks {
  leaveMarkMs(app: AppOptions, channel: string, leave: 'channel_vacated' | 'member_removed'): number;
}
