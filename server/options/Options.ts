/** Typed view of the validated configuration. */

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
  apps: AppOptions[];
}
