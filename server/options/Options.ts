/** Typed view of the validated configuration. */

import type { RedisConfig } from '../cluster/redis-connection';

export type WebhookEventType =
  | 'channel_occupied'
  | 'channel_vacated'
  | 'member_added'
  | 'member_removed'
  | 'client_event'
  | 'cache_miss'
  | 'subscription_count';

export interface WebhookTarget {
  url: string;
  events: WebhookEventType[];
  channelPrefix?: string;
  channelSuffix?: string;
  headers?: Record<string, string>;
  batch: boolean;
}

export interface AppOptions {
  id: string;
  key: string;
  secret: string;
  enabled: boolean;
  clientEvents: boolean;
  userAuthentication: boolean;
  userAuthenticationTimeoutMs: number;
  subscriptionCount: boolean;
  watchlist: boolean;
  maxConnections: number;
  maxClientEventsPerSecond: number;
  maxBackendEventsPerSecond: number;
  maxRestRequestsPerSecond: number;
  maxPresenceMembers: number;
  maxPresenceMemberBytes: number;
  maxEventBytes: number;
  maxEventNameLength: number;
  maxChannelsPerEvent: number;
  maxBatchSize: number;
  maxChannelNameLength: number;
  cacheTtlSeconds: number;
  allowedOrigins: string[];
  webhooks: WebhookTarget[];
  /** Web Push for this app (push-config.ts resolves it with the top-level `push`). */
  push?: AppPushOptions;
}

/** Top-level `push`: Web Push for every app; see schema.ts for each field and its default. */
export interface PushOptions {
  subject?: string;
  ttlSeconds?: number;
  allowInsecureEndpoints?: boolean;
  allowedHosts?: string[];
  concurrency?: number;
  maxSocketsPerOrigin?: number;
  encryptThreads?: number;
  requestTimeoutMs?: number;
  maxAttempts?: number;
  deviceRequestsPerIpPerSecond?: number;
  reportsPerIpPerSecond?: number;
  publishRetentionSeconds?: number;
  deviceIdleDays?: number;
}

/** `apps[].push`. */
export interface AppPushOptions {
  enabled?: boolean;
  vapidSubject?: string;
  vapidPublicKey?: string;
  vapidPrivateKey?: string;
  ttlSeconds?: number;
}

export interface HeraldOptions {
  host: string;
  port: number;
  dataDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  activityTimeout: number;
  pongTimeout: number;
  maxMessageBytes: number;
  maxRequestBytes: number;
  shutdownGraceMs: number;
  // Operations fields are optional here so programmatic callers (tests) may omit them; the schema gives
  // their defaults (`configDefault`).
  trustProxy?: boolean | string[];
  maxConnectionsPerIp?: number;
  maxSendBufferBytes?: number;
  memoryThresholdPercent?: number;
  memoryLimitBytes?: number;
  metricsEnabled?: boolean;
  /** Journal queued webhook events in the data directory (default true). */
  webhookJournal?: boolean;
  adminToken?: string;
  tls?: { cert: string; key: string };
  /** Redis that makes this node a cluster member (adapter + shared state); unset: one node, in memory. */
  redis?: string | RedisConfig;
  /** Prefix of every Redis key and pub/sub channel (default `herald:`). */
  redisPrefix?: string;
  /** Web Push (push-config.ts); unset and no app's own `push`: push is off. */
  push?: PushOptions;
  apps: AppOptions[];
}
