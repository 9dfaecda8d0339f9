import { channelType, SERVER_TO_USER_PREFIX } from '../protocol';
import { authenticateUser, authorizeChannel, type ChannelAuthResponse, type PresenceChannelData, type UserAuthResponse, type UserData } from './auth';
import { channelSharedSecret } from './encryption';
import { HeraldInputError } from './errors';
import { batchBody, triggerBody, type BatchEvent, type BatchResult, type TriggerParams, type TriggerResult } from './events';
import { resolveOptions, type HeraldOptions, type ResolvedOptions } from './options';
import { checkPushUserId, interestsBody, usersBody, type PublishBody, type PublishResponse, type PublishStatus } from './push';
import { Transport, type HeraldResponse, type RequestOptions } from './request';
import { signPushToken } from './token';
import { checkChannel, checkUserId, infoParam } from './validate';
import { Webhook, type WebhookRequest } from './webhook';

export interface ChannelsResult {
  channels: Record<string, { user_count?: number; subscription_count?: number }>;
}

export interface ChannelResult {
  occupied: boolean;
  user_count?: number;
  subscription_count?: number;
  /** Cache channels with `info: 'cache'`: the cached event's data and seconds left, or null. */
  cache?: { data: string; ttl: number } | null;
}

export interface UsersResult {
  users: { id: string }[];
}

const enc = encodeURIComponent;

/**
 * A client for one Herald app: the REST API, auth signatures, webhooks and push. Method names follow
 * pusher-http-node so that moving from `pusher` is a find-and-replace; methods pusher-http-node also has
 * resolve to a response (`status`, `json()`, plus the parsed `body`), the others to the parsed body.
 */
export class Herald {
  readonly config: ResolvedOptions;
  private readonly transport: Transport;

  constructor(options: HeraldOptions) {
    this.config = resolveOptions(options);
    this.transport = new Transport(this.config);
  }

  /** Releases the keep-alive sockets (the client stays usable; new sockets are opened on demand). */
  close(): void {
    this.transport.destroy();
  }

  // ---------------------------------------------------------------- events

  /** Triggers `event` on up to 100 channels (one if it is `private-encrypted-`, whose data is encrypted). */
  trigger(channels: string | string[], event: string, data: unknown, params?: TriggerParams): Promise<HeraldResponse<TriggerResult>> {
    return this.call(() => ({ method: 'POST', path: '/events', body: triggerBody(this.config, channels, event, data, params) }));
  }

  /** Triggers up to 10 events in one request; each may have its own channel, socket to exclude and info. */
  triggerBatch(batch: BatchEvent[]): Promise<HeraldResponse<BatchResult>> {
    return this.call(() => ({ method: 'POST', path: '/batch_events', body: batchBody(this.config, batch) }));
  }

  /** Sends an event to every signed-in connection of a user (`#server-to-user-{id}`). */
  sendToUser(userId: string, event: string, data: unknown): Promise<HeraldResponse<TriggerResult>> {
    return this.call(() => {
      checkUserId(userId);
      return { method: 'POST', path: '/events', body: triggerBody(this.config, `${SERVER_TO_USER_PREFIX}${userId}`, event, data, {}, true) };
    });
  }

  /** Closes every signed-in connection of a user, on every node. */
  terminateUserConnections(userId: string): Promise<HeraldResponse<Record<string, never>>> {
    return this.call(() => {
      checkUserId(userId);
      return { method: 'POST', path: `/users/${enc(userId)}/terminate_connections`, body: {} };
    });
  }

  // ---------------------------------------------------------------- channel queries

  /** Occupied channels, optionally by prefix; `info: 'user_count'` needs a `presence-` prefix. */
  async getChannels(opts: { prefix?: string; info?: string | string[] } = {}): Promise<ChannelsResult> {
    const res = await this.call<ChannelsResult>(() => {
      const info = infoParam(opts.info, ['user_count', 'subscription_count']);
      if (info?.split(',').includes('user_count') && !(opts.prefix ?? '').startsWith('presence-')) {
        throw new HeraldInputError("info 'user_count' needs prefix 'presence-'");
      }
      return { method: 'GET', path: '/channels', params: { filter_by_prefix: opts.prefix || undefined, info } };
    });
    return res.body;
  }

  /** One channel's state: `occupied`, and `user_count`, `subscription_count` or `cache` on request. */
  async getChannel(name: string, opts: { info?: string | string[] } = {}): Promise<ChannelResult> {
    const res = await this.call<ChannelResult>(() => {
      checkChannel(name, this.config.limits);
      const info = infoParam(opts.info, ['user_count', 'subscription_count', 'cache']);
      const type = channelType(name);
      const asked = info?.split(',') ?? [];
      if (asked.includes('user_count') && type.kind !== 'presence') throw new HeraldInputError("info 'user_count' is only for presence- channels");
      if (asked.includes('cache') && !type.cache) throw new HeraldInputError("info 'cache' is only for cache channels");
      return { method: 'GET', path: `/channels/${enc(name)}`, params: { info } };
    });
    return res.body;
  }

  /** Members of a presence channel. */
  async getUsers(channel: string): Promise<UsersResult> {
    const res = await this.call<UsersResult>(() => {
      checkChannel(channel, this.config.limits);
      if (channelType(channel).kind !== 'presence') throw new HeraldInputError('Users can only be listed for presence- channels');
      return { method: 'GET', path: `/channels/${enc(channel)}/users` };
    });
    return res.body;
  }

  /** A signed GET below `/apps/{appId}`, for routes without a method of their own. */
  get<T = unknown>(opts: { path: string; params?: Record<string, string | undefined> }): Promise<HeraldResponse<T>> {
    return this.call(() => ({ method: 'GET', path: opts.path, params: opts.params }));
  }

  /** A signed POST below `/apps/{appId}`. */
  post<T = unknown>(opts: { path: string; params?: Record<string, string | undefined>; body: unknown }): Promise<HeraldResponse<T>> {
    return this.call(() => ({ method: 'POST', path: opts.path, params: opts.params, body: opts.body }));
  }

  // ---------------------------------------------------------------- auth and webhooks

  /** What an auth endpoint returns for a private, presence or encrypted channel. */
  authorizeChannel(socketId: string, channel: string, presenceData?: PresenceChannelData): ChannelAuthResponse {
    return authorizeChannel(this.config, socketId, channel, presenceData);
  }

  /** What a user-authentication endpoint returns for `pusher:signin`. */
  authenticateUser(socketId: string, userData: UserData): UserAuthResponse {
    return authenticateUser(this.config, socketId, userData);
  }

  /** Reads a webhook request; call `isValid()` or the throwing getters (`getEvents()`). */
  webhook(request: WebhookRequest): Webhook {
    return new Webhook({ key: this.config.key, secret: this.config.secret }, request);
  }

  /** The 32-byte key of an encrypted channel (what `shared_secret` carries, base64). */
  channelSharedSecret(channel: string): Buffer {
    if (!this.config.encryptionMasterKey) throw new HeraldInputError('Set encryptionMasterKeyBase64 first');
    return channelSharedSecret(channel, this.config.encryptionMasterKey);
  }

  // ---------------------------------------------------------------- push

  /** Web Push to every device interested in any of 1-100 interests (one notification per device). */
  async publishToInterests(interests: string[], body: PublishBody): Promise<PublishResponse> {
    const res = await this.call<PublishResponse>(() => ({ method: 'POST', path: '/push/interests', body: interestsBody(interests, body) }));
    return res.body;
  }

  /** Web Push to every device of 1-1000 users (bound with a token from `generatePushToken`). */
  async publishToUsers(users: string[], body: PublishBody): Promise<PublishResponse> {
    const res = await this.call<PublishResponse>(() => ({ method: 'POST', path: '/push/users', body: usersBody(users, body) }));
    return res.body;
  }

  /** The state of a publish. */
  async getPublish(publishId: string): Promise<PublishStatus> {
    const res = await this.call<PublishStatus>(() => {
      if (typeof publishId !== 'string' || publishId.length === 0) throw new HeraldInputError('publishId must be a non-empty string');
      return { method: 'GET', path: `/push/publishes/${enc(publishId)}` };
    });
    return res.body;
  }

  /** Deletes a user and all their devices. */
  async deleteUser(userId: string): Promise<{ deletedDevices?: number }> {
    const res = await this.call<{ deletedDevices?: number }>(() => {
      checkPushUserId(userId);
      return { method: 'DELETE', path: `/push/users/${enc(userId)}` };
    });
    return res.body;
  }

  /** A token that binds a browser's device to `userId` (`herald.push.setUser`): JWT HS256, ≤24 h. */
  generatePushToken(userId: string, ttlSeconds?: number): { token: string } {
    return { token: signPushToken(this.config.appId, this.config.secret, userId, ttlSeconds) };
  }

  /** Builds the request (checks included) inside the promise, so bad input rejects instead of throwing. */
  private async call<T>(build: () => RequestOptions): Promise<HeraldResponse<T>> {
    return this.transport.send<T>(build());
  }
}
