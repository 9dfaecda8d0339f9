/**
 * The configuration schema: the single source for validation (ajv, with defaults) and for the README's
 * configuration table (`npm run docs:config`), so the two cannot drift.
 */

/** One app's settings. Defaults follow hosted Pusher's limits (protocol.md §10). */
export const appSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'key', 'secret'],
  properties: {
    id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'App id used in REST paths (`/apps/:id`). Numeric ids work with every server library.' },
    key: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$', description: 'Public key clients connect with (`/app/:key`).' },
    secret: { type: 'string', minLength: 8, description: 'Secret that signs REST requests, channel auth and webhooks.' },
    enabled: { type: 'boolean', default: true, description: 'A disabled app refuses connections (4003) and REST calls (403).' },
    clientEvents: { type: 'boolean', default: false, description: 'Allow `client-` events on private and presence channels.' },
    userAuthentication: { type: 'boolean', default: false, description: 'Require `pusher:signin` within `userAuthenticationTimeoutMs` (else close 4009).' },
    userAuthenticationTimeoutMs: { type: 'integer', minimum: 1000, default: 30000, description: 'Time a connection has to sign in when `userAuthentication` is on.' },
    subscriptionCount: { type: 'boolean', default: false, description: 'Send `pusher_internal:subscription_count` events and `subscription_count` webhooks.' },
    watchlist: { type: 'boolean', default: false, description: 'Send watchlist online/offline events to signed-in users.' },
    maxConnections: { type: 'integer', minimum: -1, default: -1, description: 'Connections per app across the cluster (-1: unlimited); over it, close 4004.' },
    maxClientEventsPerSecond: { type: 'integer', minimum: -1, default: 10, description: 'Client events per connection per second (-1: unlimited); over it, `pusher:error` 4301.' },
    maxBackendEventsPerSecond: { type: 'integer', minimum: -1, default: -1, description: 'REST-triggered events per second per app (-1: unlimited); over it, 429 with `Retry-After`.' },
    maxPresenceMembers: { type: 'integer', minimum: 1, default: 100, description: 'Members per presence channel.' },
    maxPresenceMemberBytes: { type: 'integer', minimum: 16, default: 1024, description: 'Size of one member\'s `user_info` JSON.' },
    maxEventBytes: { type: 'integer', minimum: 64, default: 10240, description: 'Size of one event\'s `data` (REST and client events); over it, 413.' },
    maxEventNameLength: { type: 'integer', minimum: 1, default: 200, description: 'Length of an event name.' },
    maxChannelsPerEvent: { type: 'integer', minimum: 1, default: 100, description: 'Channels one REST trigger may name.' },
    maxBatchSize: { type: 'integer', minimum: 1, default: 10, description: 'Events in one `batch_events` call.' },
    maxChannelNameLength: { type: 'integer', minimum: 16, maximum: 1000, default: 200, description: 'Length of a channel name.' },
    cacheTtlSeconds: { type: 'integer', minimum: 1, default: 1800, description: 'How long cache channels keep their last event.' },
    allowedOrigins: {
      type: 'array', items: { type: 'string', minLength: 1 }, default: [],
      description: 'Origins allowed to connect (`https://app.example.com`, `*.example.com`); empty: any. Others are closed with 4009.',
    },
    webhooks: {
      type: 'array', default: [],
      description: 'Webhook targets: `{ url, events, channelPrefix?, channelSuffix?, headers?, batch? }`.',
      items: {
        type: 'object', additionalProperties: false, required: ['url', 'events'],
        properties: {
          url: { type: 'string', pattern: '^https?://' },
          events: {
            type: 'array', minItems: 1,
            items: { enum: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss', 'subscription_count'] },
          },
          channelPrefix: { type: 'string' },
          channelSuffix: { type: 'string' },
          headers: { type: 'object', additionalProperties: { type: 'string' } },
          batch: { type: 'boolean', default: false },
        },
      },
    },
  },
} as const;

/** The whole configuration file (`HERALD_CONFIG`). Environment variables override the top-level fields. */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', default: '0.0.0.0', description: 'Address to listen on. Env `HERALD_HOST`.' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: 6001, description: 'Port for WebSocket and HTTP. Env `HERALD_PORT`.' },
    dataDir: { type: 'string', default: './.herald', description: 'Where generated credentials and local data live. Env `HERALD_DATA_DIR`.' },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', description: 'Log level. Env `HERALD_LOG_LEVEL`.' },
    activityTimeout: { type: 'integer', minimum: 5, maximum: 120, default: 30, description: 'Seconds advertised as `activity_timeout`; a socket silent this long (plus a grace) is pinged.' },
    pongTimeout: { type: 'integer', minimum: 1, maximum: 120, default: 30, description: 'Seconds to wait for any reply to a server ping before closing with 4201.' },
    maxMessageBytes: { type: 'integer', minimum: 1024, default: 65536, description: 'Largest WebSocket frame accepted; larger frames are closed with 1009.' },
    maxRequestBytes: { type: 'integer', minimum: 1024, default: 1048576, description: 'Largest REST request body; larger bodies get 413 before parsing.' },
    shutdownGraceMs: { type: 'integer', minimum: 0, default: 10000, description: 'How long graceful shutdown waits for in-flight work.' },
    apps: { type: 'array', items: appSchema, description: 'Apps served. Without any, a default app is made from `HERALD_APP_*` or generated.' },
  },
} as const;
