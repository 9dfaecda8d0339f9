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
    maxRestRequestsPerSecond: {
      type: 'integer', minimum: -1, default: -1,
      description: 'Signed REST requests (reads and writes) per second per app, across the cluster (-1: unlimited); over it, 429 with `Retry-After`.',
    },
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
    push: {
      type: 'object', additionalProperties: false,
      description: 'Web Push for this app; with a top-level `push` block every app has push unless it sets `enabled: false`.',
      properties: {
        enabled: { type: 'boolean', default: true, description: 'Web Push on for this app.' },
        vapidSubject: {
          type: 'string', minLength: 1,
          description: 'VAPID contact (`mailto:ops@example.com` or an `https:` URL, no localhost); overrides `push.subject`. Checked at start-up.',
        },
        vapidPublicKey: { type: 'string', description: 'VAPID public key (base64url, 65 bytes); with `vapidPrivateKey`. Unset: generated on first use and stored.' },
        vapidPrivateKey: { type: 'string', description: 'VAPID private key (base64url, 32 bytes); with `vapidPublicKey`.' },
        ttlSeconds: { type: 'integer', minimum: 0, maximum: 2419200, description: 'Default push TTL for this app; overrides `push.ttlSeconds`.' },
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
    maxSendBufferBytes: {
      type: 'integer', minimum: 65536, default: 4194304,
      description: 'Bytes that may wait to be sent to one WebSocket client (beyond what the kernel holds); a client further behind is not reading and is dropped (recorded as 4100; it reconnects and resubscribes). A single reply larger than this (a big presence member list) is not counted against it.',
    },
    maxRequestBytes: { type: 'integer', minimum: 1024, default: 1048576, description: 'Largest REST request body; larger bodies get 413 before parsing.' },
    shutdownGraceMs: { type: 'integer', minimum: 0, default: 10000, description: 'How long graceful shutdown waits for in-flight work.' },
    webhookJournal: {
      type: 'boolean', default: true,
      description: 'Keep queued webhook events in `webhooks.sqlite` in `dataDir` until delivered or given up, so a crash or restart of this node sends them at its next start (at least once); a single node (no Redis) also keeps its occupancy there, so after a crash it sends the `channel_vacated` / `member_removed` owed. false: queues live in memory only.',
    },
    trustProxy: {
      anyOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'string', minLength: 1 } }],
      default: false,
      description: 'Take the client address from `X-Forwarded-For`: `true` trusts every proxy, a list (`["127.0.0.1", "10.0.0.0/8"]`) only those. Leave false when clients connect directly, or anyone can pick the address the per-IP limit sees. Env `HERALD_TRUST_PROXY` (`true`, or a comma-separated list).',
    },
    maxConnectionsPerIp: {
      type: 'integer', minimum: -1, default: -1,
      description: 'WebSocket connections from one client address on this node (-1: unlimited); over it, close 4100 (retry with backoff). Behind a proxy set `trustProxy` so the address comes from `X-Forwarded-For`.',
    },
    memoryThresholdPercent: {
      type: 'integer', minimum: 1, maximum: 100, default: 85,
      description: '`/ready` answers 503 while memory use is above this share of `memoryLimitBytes` (process RSS) or, when that is 0, of V8\'s heap limit (used heap).',
    },
    memoryLimitBytes: {
      type: 'integer', minimum: 0, default: 0,
      description: 'Memory budget for `memoryThresholdPercent`, e.g. the container\'s limit; 0: V8\'s heap limit (`--max-old-space-size`).',
    },
    metricsEnabled: { type: 'boolean', default: true, description: 'Serve Prometheus metrics at `/metrics`.' },
    adminToken: {
      type: 'string', minLength: 16,
      description: 'Token that opens the debug console at `/console`; without one the console is off (404). Env `HERALD_ADMIN_TOKEN`.',
    },
    tls: {
      type: 'object', additionalProperties: false, required: ['cert', 'key'],
      description: 'Serve HTTPS and `wss://` on `port`: `{ cert, key }`, paths to PEM files. Env `HERALD_TLS_CERT`, `HERALD_TLS_KEY`.',
      properties: {
        cert: { type: 'string', minLength: 1, description: 'Path to the PEM certificate (chain).' },
        key: { type: 'string', minLength: 1, description: 'Path to the PEM private key.' },
      },
    },
    redis: {
      description:
        'Redis that makes this node a cluster member: pub/sub between nodes and the shared state (presence, counts, quotas, webhook marks). '
        + 'A URL (`redis://[user:pass@]host:6379[/db]`, `rediss://` for TLS, `redis+sentinel://host:26379,host2:26379/mymaster`, `redis+cluster://host:7000,host2:7001`) '
        + 'or an object: `{ url }`, `{ cluster: ["host:port"] }` or `{ sentinels: [{ host, port }], name }`, with optional `username`, `password`, `db`, `tls`. '
        + 'Unset: one node, in memory, nothing to set up. Env `HERALD_REDIS_URL`.',
      anyOf: [
        { type: 'string', pattern: '^rediss?(\\+(sentinel|cluster))?://' },
        {
          type: 'object', additionalProperties: false,
          properties: {
            url: { type: 'string', pattern: '^rediss?(\\+(sentinel|cluster))?://' },
            cluster: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
            sentinels: {
              type: 'array', minItems: 1,
              items: { type: 'object', additionalProperties: false, required: ['host'], properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 1, maximum: 65535 } } },
            },
            name: { type: 'string', minLength: 1 },
            username: { type: 'string' },
            password: { type: 'string' },
            sentinelPassword: { type: 'string' },
            db: { type: 'integer', minimum: 0 },
            tls: { type: 'boolean' },
          },
        },
      ],
    },
    redisPrefix: {
      type: 'string', pattern: '^[^{}]*$', maxLength: 64, default: 'herald:',
      description: 'Prefix of every Redis key and pub/sub channel; the nodes of one cluster use the same one. No braces (they would move Redis Cluster hash slots). Env `HERALD_REDIS_PREFIX`.',
    },
    push: {
      type: 'object', additionalProperties: false,
      description: 'Web Push fallback for every app (apps may override with `apps[].push`). Unset and no app with its own `push`: push is off. Env `HERALD_PUSH_SUBJECT` sets `push.subject`.',
      properties: {
        subject: { type: 'string', minLength: 1, description: 'VAPID contact for every app: `mailto:ops@example.com` or an `https:` URL (no localhost; Apple refuses it). Required unless each app sets `vapidSubject`.' },
        ttlSeconds: { type: 'integer', minimum: 0, maximum: 2419200, default: 86400, description: 'Default TTL of a push (seconds the push service keeps it for an offline device); `web.ttl` overrides it per publish.' },
        allowInsecureEndpoints: { type: 'boolean', default: false, description: 'Accept `http:` and local push endpoints. Only for tests and demos with a local push service.' },
        allowedHosts: {
          type: 'array', items: { type: 'string', minLength: 1 },
          default: ['fcm.googleapis.com', '*.push.services.mozilla.com', '*.push.apple.com', '*.notify.windows.com'],
          description: 'Push-service hosts devices may register (`host` or `*.suffix`); empty: any public host. Local and IP-literal hosts are always refused (SSRF).',
        },
        concurrency: { type: 'integer', minimum: 1, default: 100, description: 'Push requests in flight per node.' },
        maxSocketsPerOrigin: { type: 'integer', minimum: 1, default: 50, description: 'Keep-alive connections per push service.' },
        encryptThreads: { type: 'integer', minimum: 0, maximum: 64, description: 'Threads that encrypt push messages (most of a send\'s CPU) off the event loop, so a large publish does not hold up WebSocket traffic; 0 encrypts on the event loop. Unset: one per CPU the process may use beyond the first, at most 4 (so 0 on one CPU); a container\'s CPU quota is not seen, so set it there.' },
        requestTimeoutMs: { type: 'integer', minimum: 100, default: 15000, description: 'Total deadline of one push request.' },
        maxAttempts: { type: 'integer', minimum: 1, default: 8, description: 'Attempts per device (429, 5xx and network errors are retried with backoff while the TTL lasts).' },
        deviceRequestsPerIpPerSecond: { type: 'integer', minimum: -1, default: 20, description: 'Device API requests per client address per second, per app, across the cluster (-1: unlimited); over it, 429.' },
        reportsPerIpPerSecond: { type: 'integer', minimum: -1, default: 1000, description: 'Service worker reports (`POST /push/v1/:appKey/reports`, delivered and opened) per client address per second, per app, across the cluster (-1: unlimited): a budget apart from the device API, since every browser behind one address reports the same publish at once; over it, 429 and the report is lost.' },
        publishRetentionSeconds: { type: 'integer', minimum: 60, default: 604800, description: 'How long finished publishes (and their status) are kept.' },
        deviceIdleDays: { type: 'integer', minimum: 0, default: 60, description: 'A device not registered again for this many days is deleted with its interests (the browser SDK registers on every `register()` call, so call it on each visit); 0 keeps devices until the push service reports them gone.' },
      },
    },
    apps: { type: 'array', items: appSchema, description: 'Apps served. Without any, a default app is made from `HERALD_APP_*` or generated.' },
  },
} as const;
