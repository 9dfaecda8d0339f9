import { randomInt } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import {
  allowsClientEvents,
  channelAuthString,
  channelFrames,
  channelNameProblem,
  channelType,
  dataObject,
  decodeClientFrame,
  encodeData,
  encodeFrame,
  DEVICE_EVENT,
  DEVICE_SET_EVENT,
  isDeviceId,
  requiresAuth,
  serverToUserId,
  splitAuth,
  userAuthString,
  userIdProblem,
  utf8Length,
  DEFAULT_LIMITS,
} from '../sdk/protocol';
import { hmacSha256Hex, safeEqual } from '../sdk/protocol/node/hmac';
import type { Adapter, AdapterMessage } from './adapter/Adapter';
import type { AppRegistry } from './apps/AppRegistry';
import { ChannelRegistry } from './channels/ChannelRegistry';
import { ERRORS, HeraldError, closeCodeOf, type ErrorName } from './errors';
import type { GatewayObserver, LeaveMarks } from './GatewayObserver';
import type { PushFallback } from './push/PushFallback';
import type { AppOptions, HeraldOptions } from './options/Options';
import type { ClusterState, MemberJoin } from './state/ClusterState';
import type { StateTransition } from './state/StateTransition';
import { Connection, type ConnectionHost } from './ws/Connection';
import { payloadBytes, textFrame } from './ws/frame';
import { ConnectionsPerIp } from './ws/ConnectionsPerIp';
import { originAllowed } from './ws/origin';
import { configDefault } from './options/config-default';

/** What the transport knows about a new socket. */
export interface Handshake {
  appKey: string;
  protocol: string | undefined;
  origin: string | undefined;
  remoteAddress: string;
  /** The `device_id` query parameter as sent (absent: undefined); checked here like `herald:device`. */
  deviceId: unknown;
}

/** The `info` attributes a REST caller may ask for. */
export interface ChannelInfo {
  occupied: boolean;
  user_count?: number;
  subscription_count?: number;
  cache?: { data: string; ttl: number } | null;
}

const SUPPORTED_PROTOCOLS = new Set([5, 6, 7]);
/** Where a socket's task queue starts when it is empty. */
const IDLE: Promise<void> = Promise.resolve();
const SUBSCRIPTION_COUNT_THROTTLE_MS = 5000;
const SUBSCRIPTION_COUNT_THROTTLE_ABOVE = 100;

/** Hidden routing channels: never visible to clients or REST, so they start with `#` and a colon. */
const userRoute = (userId: string) => `#user:${userId}`;
const watchRoute = (userId: string) => `#watch:${userId}`;

/**
 * The gateway core. The WebSocket and HTTP layers call only this; it owns the local registry and talks to
 * the adapter (messages between nodes) and the cluster state (counts, presence, cache).
 *
 * Data path: publish → adapter.publish → (every node) onMessage → registry → Connection.send, with the
 * frame encoded once per publish and channel and written unchanged to every subscriber.
 */
export class Gateway {
  readonly registry = new ChannelRegistry();
  private readonly observers: GatewayObserver[] = [];
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly countTimers = new Map<string, { timer: NodeJS.Timeout; count: number }>();
  private accepting = true;
  private readonly perIp: ConnectionsPerIp;
  private pushFallback: PushFallback | null = null;
  private leaveMarks: LeaveMarks | null = null;

  constructor(
    readonly options: HeraldOptions,
    readonly apps: AppRegistry,
    readonly adapter: Adapter,
    readonly state: ClusterState,
    private readonly log: Logger,
  ) {
    this.perIp = new ConnectionsPerIp(options.maxConnectionsPerIp ?? configDefault('maxConnectionsPerIp'));
    this.connectionHost = {
      maxSendBufferBytes: options.maxSendBufferBytes ?? configDefault('maxSendBufferBytes'),
      tooSlow: (conn, bufferedBytes) => this.dropTooSlow(conn, bufferedBytes),
    };
  }

  /** Installs the Web Push fallback (PushService) that `publishWithPush` hands offline subscribers to. */
  setPushFallback(fallback: PushFallback): void {
    this.pushFallback = fallback;
  }

  /** Installs who waits on leaves (the webhook observer), so the state keeps their marks (ClusterState). */
  setLeaveMarks(marks: LeaveMarks): void {
    this.leaveMarks = marks;
    // Transitions the state finds by itself (applyTransitions) mark their leaves the same way.
    this.state.setLeaveMarks?.((appId, channel, leave) => {
      const app = this.apps.byId(appId);
      return app ? marks.leaveMarkMs(app, channel, leave) : 0;
    });
  }

  private markMs(app: AppOptions, channel: string, leave: 'channel_vacated' | 'member_removed'): number {
    return this.leaveMarks?.leaveMarkMs(app, channel, leave) ?? 0;
  }

  observe(observer: GatewayObserver): void {
    this.observers.push(observer);
  }

  async start(): Promise<void> {
    await this.state.start();
    await this.adapter.start((msg) => this.onMessage(msg));
    const every = Math.min(1000, this.options.pongTimeout * 250);
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Stops taking connections and closes every socket with 4200 so clients reconnect elsewhere. */
  async drain(): Promise<void> {
    this.accepting = false;
    const closing: Promise<void>[] = [];
    for (const conn of this.registry.all()) closing.push(this.close(conn, 'SHUTTING_DOWN'));
    await Promise.allSettled(closing);
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const t of this.countTimers.values()) clearTimeout(t.timer);
    this.countTimers.clear();
    await this.adapter.stop();
    await this.state.stop();
  }

  healthy(): boolean {
    return this.accepting && this.adapter.healthy() && this.state.healthy();
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  private emit<K extends keyof GatewayObserver>(name: K, ...args: Parameters<NonNullable<GatewayObserver[K]>>): void {
    for (const o of this.observers) {
      const fn = o[name] as ((...a: unknown[]) => void) | undefined;
      if (!fn) continue;
      try {
        fn.apply(o, args);
      } catch (err) {
        this.log.error({ err, observer: name }, 'observer failed');
      }
    }
  }

  // ---------------------------------------------------------------- connections

  /** Takes a freshly upgraded socket. Refusals are sent as `pusher:error` then a close with the code. */
  accept(ws: WebSocket, hs: Handshake): void {
    // Socket errors are the transport's (websocket-plugin logs them once and terminates the socket).
    const app = this.apps.byKey(hs.appKey);
    const refuse = (name: ErrorName, detail?: string) => {
      const code = closeCodeOf(name);
      const message = detail ?? ERRORS[name].message;
      this.emit('connectionRefused', app?.id ?? null, code, message);
      this.log.info({ app: app?.id, key: hs.appKey, code, remote: hs.remoteAddress }, message);
      ws.send(encodeFrame('pusher:error', { code, message }));
      ws.close(code, message.slice(0, 120));
    };
    if (!this.accepting) return refuse('SHUTTING_DOWN');
    if (!app) return refuse('APP_NOT_FOUND', `App key ${hs.appKey.slice(0, 64)} does not exist`);
    if (!app.enabled) return refuse('APP_DISABLED');
    if (hs.protocol === undefined || hs.protocol === '') return refuse('NO_PROTOCOL');
    const protocol = Number(hs.protocol);
    if (!Number.isInteger(protocol) || !SUPPORTED_PROTOCOLS.has(protocol)) {
      return refuse('UNSUPPORTED_PROTOCOL', `Unsupported protocol version ${hs.protocol.slice(0, 16)}; use 7`);
    }
    if (!originAllowed(app.allowedOrigins, hs.origin)) {
      return refuse('ORIGIN_NOT_ALLOWED', `Origin ${String(hs.origin).slice(0, 80)} is not allowed`);
    }
    if (!this.perIp.take(hs.remoteAddress)) return refuse('IP_OVER_QUOTA');

    // A bad device id does not refuse the socket (its events still flow), but the client hears why its device
    // will not count as live: otherwise it would get a push for every event it also sees live.
    const deviceId = isDeviceId(hs.deviceId) ? hs.deviceId : null;
    const conn = new Connection(ws, newSocketId(), app, hs.remoteAddress, deviceId, this.connectionHost);
    this.connections.set(ws, conn);
    const on = this.socketListeners;
    ws.on('message', on.message);
    ws.on('pong', on.pong);
    ws.on('close', on.close);
    this.enqueue(conn, () => this.open(conn));
    if (deviceId === null && hs.deviceId !== undefined) this.enqueue(conn, () => this.refuseDevice(conn));
  }

  /** Shared by every connection: the send-buffer limit and what to do past it. */
  private readonly connectionHost: ConnectionHost;

  /**
   * Drops a client whose unsent bytes passed `maxSendBufferBytes`. Terminated, not closed: a close frame
   * would wait behind everything it has not read. It reconnects (1006) and resubscribes; its teardown runs
   * now, recorded with 4100.
   */
  private dropTooSlow(conn: Connection, bufferedBytes: number): void {
    if (conn.closing || conn.ws.readyState !== 1) return;
    const e = ERRORS.CLIENT_TOO_SLOW;
    this.log.warn({ app: conn.app.id, socketId: conn.socketId, remote: conn.remoteAddress, bufferedBytes }, e.message);
    conn.ws.terminate();
    this.enqueue(conn, () => this.teardown(conn, closeCodeOf('CLIENT_TOO_SLOW')));
  }

  /** Each accepted socket's connection, found by the shared socket listeners. */
  private readonly connections = new WeakMap<WebSocket, Connection>();
  /**
   * Socket listeners shared by every socket (ws calls them with the socket as `this`) instead of closures
   * made per socket: with tens of thousands of idle sockets, a closure per event and the scope they keep alive
   * cost about 400 bytes a connection.
   */
  private readonly socketListeners = Gateway.makeSocketListeners(this);

  private static makeSocketListeners(gateway: Gateway) {
    return {
      message(this: WebSocket, data: Buffer, isBinary: boolean): void {
        const conn = gateway.connections.get(this);
        if (conn) gateway.onFrame(conn, data, isBinary);
      },
      pong(this: WebSocket): void {
        const conn = gateway.connections.get(this);
        if (!conn) return;
        conn.lastSeen = Date.now();
        conn.pingSentAt = 0;
      },
      close(this: WebSocket): void {
        const conn = gateway.connections.get(this);
        if (!conn) return;
        gateway.perIp.release(conn.remoteAddress);
        gateway.enqueue(conn, () => gateway.teardown(conn));
      },
    };
  }

  private async open(conn: Connection): Promise<void> {
    if (conn.closing) return;
    const ok = await this.state.addConnection(conn.app.id, conn.app.maxConnections);
    if (!ok) {
      const e = ERRORS.OVER_QUOTA;
      conn.ws.send(encodeFrame('pusher:error', { code: e.pusherCode, message: e.message }));
      conn.ws.close(e.pusherCode, e.message);
      this.emit('connectionRefused', conn.app.id, e.pusherCode, e.message);
      conn.closing = true;
      return;
    }
    conn.established = true;
    this.registry.addConnection(conn);
    conn.send(
      encodeFrame('pusher:connection_established', {
        socket_id: conn.socketId,
        activity_timeout: this.options.activityTimeout,
      }),
    );
    this.emit('connectionOpened', conn);
  }

  /**
   * Runs `task` after everything already queued for this socket, logging (once) what it throws. The last
   * task to finish clears `conn.tail`, so an idle socket holds no promise.
   */
  private enqueue(conn: Connection, task: () => Promise<void> | void): void {
    const tail: Promise<void> = (conn.tail ?? IDLE).then(task).then(
      () => {
        if (conn.tail === tail) conn.tail = null;
      },
      (err: unknown) => {
        if (conn.tail === tail) conn.tail = null;
        this.handleFailure(conn, err);
      },
    );
    conn.tail = tail;
  }

  private handleFailure(conn: Connection, err: unknown): void {
    if (err instanceof HeraldError) {
      this.sendError(conn, err.pusherCode, err.message);
      return;
    }
    this.log.error({ err, socketId: conn.socketId, app: conn.app.id }, 'error while handling a message');
    this.sendError(conn, null, ERRORS.SERVER_ERROR.message);
  }

  private sendError(conn: Connection, code: number | null, message: string): void {
    conn.send(encodeFrame('pusher:error', { code, message }));
    this.emit('clientError', conn, code, message);
  }

  /** Closes a connection with a code from the error table; the teardown runs from the socket's close. */
  async close(conn: Connection, name: ErrorName): Promise<void> {
    if (conn.closing) return;
    const e = ERRORS[name];
    const code = closeCodeOf(name);
    // Tear down the shared state now rather than when the peer answers the close frame: a dead peer
    // never answers, and presence must not wait for ws's 30 s close timeout. Frames queued before the close
    // still go first.
    conn.flush();
    conn.ws.close(code, e.message.slice(0, 120));
    this.enqueue(conn, () => this.teardown(conn, code));
    await conn.tail;
  }

  private async teardown(conn: Connection, code = 1000): Promise<void> {
    if (conn.closing) return;
    conn.closing = true;
    if (!conn.established) return;
    this.registry.removeConnection(conn);
    for (const channel of [...conn.channels.keys()]) {
      await this.leave(conn, channel);
    }
    for (const route of conn.hidden ?? []) {
      if (this.registry.leave(conn, route)) await this.adapter.unsubscribe(conn.app.id, route);
    }
    if (conn.userId !== null) {
      const last = await this.state.removeUser(conn.app.id, conn.userId);
      if (last && conn.app.watchlist) await this.publishWatchlist(conn.app, conn.userId, 'offline');
    }
    await this.state.removeConnection(conn.app.id);
    this.emit('connectionClosed', conn, code);
    // A close started by the peer has already happened; one started here has been sent. Make sure a
    // socket that never completes the close handshake does not linger, and let the timer go as soon as the
    // handshake completes: until it fires, it holds the connection and its socket (after a mass
    // terminate_connections or a shutdown, thousands of them for seconds).
    if (conn.ws.readyState !== 3) {
      const timer = setTimeout(() => conn.ws.terminate(), 5000).unref();
      conn.ws.once('close', () => clearTimeout(timer));
    }
  }

  // ---------------------------------------------------------------- incoming frames

  private onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    conn.lastSeen = Date.now();
    conn.pingSentAt = 0;
    this.emit('messageReceived', conn, data.length);
    if (isBinary) return this.sendError(conn, ERRORS.MESSAGE_BINARY.pusherCode, ERRORS.MESSAGE_BINARY.message);
    const decoded = decodeClientFrame(data.toString('utf8'));
    if (!decoded.ok) {
      return this.sendError(conn, ERRORS.MESSAGE_INVALID.pusherCode, `${ERRORS.MESSAGE_INVALID.message}: ${decoded.reason}`);
    }
    const msg = decoded.message;
    switch (msg.event) {
      case 'pusher:ping':
        // Answered at once, outside the queue: a ping must not wait behind a slow subscribe.
        return conn.send(encodeFrame('pusher:pong', {}));
      case 'pusher:pong':
        return;
      case 'pusher:subscribe':
        return this.enqueue(conn, () => this.subscribe(conn, msg.data));
      case 'pusher:unsubscribe':
        return this.enqueue(conn, () => this.unsubscribe(conn, msg.data));
      case 'pusher:signin':
        return this.enqueue(conn, () => this.signin(conn, msg.data));
      case DEVICE_EVENT:
        return this.enqueue(conn, () => this.setDevice(conn, msg.data));
      default:
        if (msg.event.startsWith('client-')) return this.enqueue(conn, () => this.clientEvent(conn, msg.event, msg.channel, msg.data));
        return this.sendError(conn, ERRORS.EVENT_UNKNOWN.pusherCode, `${ERRORS.EVENT_UNKNOWN.message}: ${msg.event.slice(0, 64)}`);
    }
  }

  // ---------------------------------------------------------------- subscriptions

  private subscriptionError(conn: Connection, channel: string, name: ErrorName, detail?: string): void {
    const e = ERRORS[name];
    const message = detail ?? e.message;
    const type = name === 'SUBSCRIPTION_AUTH' ? 'AuthError' : name === 'PRESENCE_FULL' ? 'LimitReached' : name === 'SERVER_ERROR' ? 'ServerError' : 'SubscriptionError';
    conn.send(encodeFrame('pusher:subscription_error', { type, error: message, status: e.status, code: e.pusherCode }, channel));
    this.emit('clientError', conn, e.pusherCode, message);
    this.log.debug({ socketId: conn.socketId, channel, reason: message }, 'subscription refused');
  }

  private verifySignature(conn: Connection, auth: unknown, signed: string): boolean {
    const parts = splitAuth(auth);
    if (!parts || !safeEqual(parts.key, conn.app.key)) return false;
    return safeEqual(parts.signature, hmacSha256Hex(conn.app.secret, signed));
  }

  private async subscribe(conn: Connection, raw: unknown): Promise<void> {
    if (conn.closing) return;
    const data = dataObject(raw);
    const channel = data?.channel;
    const app = conn.app;
    const problem = channelNameProblem(channel, app.maxChannelNameLength, true);
    if (problem !== null || typeof channel !== 'string') {
      return this.subscriptionError(conn, typeof channel === 'string' ? channel : '', 'CHANNEL_NAME_INVALID', problem ?? undefined);
    }
    const type = channelType(channel);
    if (conn.channels.has(channel)) {
      // Already subscribed: answer again so a client that missed the reply can go on, change nothing.
      return this.sendSubscribed(conn, channel, type.kind === 'presence');
    }
    if (type.kind === 'user' && serverToUserId(channel) !== conn.userId) {
      return this.subscriptionError(conn, channel, 'SUBSCRIPTION_FORBIDDEN', 'Only the signed-in user may subscribe to its #server-to-user channel');
    }

    let member: { id: string; info: string } | null = null;
    if (requiresAuth(type.kind)) {
      const channelData = data?.channel_data;
      if (channelData !== undefined && typeof channelData !== 'string') {
        return this.subscriptionError(conn, channel, 'PRESENCE_DATA_INVALID', 'channel_data must be a JSON string');
      }
      const signedData = type.kind === 'presence' ? channelData : undefined;
      if (!this.verifySignature(conn, data?.auth, channelAuthString(conn.socketId, channel, signedData))) {
        return this.subscriptionError(conn, channel, 'SUBSCRIPTION_AUTH', `Invalid signature for channel ${channel}`);
      }
      if (type.kind === 'presence') {
        const m = this.presenceMember(conn, channelData);
        if (typeof m === 'string') return this.subscriptionError(conn, channel, m === 'too-large' ? 'PRESENCE_MEMBER_TOO_LARGE' : 'PRESENCE_DATA_INVALID', m === 'too-large' ? undefined : m);
        member = m;
      }
    }

    let join: MemberJoin | null = null;
    const memberMarkMs = member ? this.markMs(app, channel, 'member_removed') : 0;
    if (member) {
      join = await this.state.addMember(app.id, channel, member.id, member.info, app.maxPresenceMembers, memberMarkMs);
      if (join.full) return this.subscriptionError(conn, channel, 'PRESENCE_FULL', `Presence channel is full (${app.maxPresenceMembers} members)`);
    }
    conn.channels.set(channel, member ? member.id : null);
    if (this.registry.join(conn, channel)) {
      try {
        await this.adapter.subscribe(app.id, channel);
      } catch (err) {
        // Roll back so the socket is not left half-subscribed (no broker subscription, no messages).
        this.log.error({ err, app: app.id, channel }, 'adapter subscribe failed');
        conn.channels.delete(channel);
        this.registry.leave(conn, channel);
        if (member && join) await this.rollBackJoin(app, channel, member.id, join, memberMarkMs);
        return this.subscriptionError(conn, channel, 'SERVER_ERROR', 'Subscription failed; try again');
      }
    }
    const channelMarkMs = this.markMs(app, channel, 'channel_vacated');
    const change = await this.state.addSubscriber(app.id, channel, channelMarkMs);
    if (conn.deviceId !== null) await this.state.addLiveDevice(app.id, channel, conn.deviceId);
    if (change.occupied) this.emit('channelOccupied', app, channel, channelMarkMs > 0 ? change.rejoined : undefined);
    await this.sendSubscribed(conn, channel, member !== null);
    this.emit('subscribed', conn, channel);

    if (member && join?.added) {
      await this.adapter.publish({
        appId: app.id,
        channel,
        frame: encodeFrame('pusher_internal:member_added', `{"user_id":${JSON.stringify(member.id)},"user_info":${member.info}}`, channel),
        except: conn.socketId,
      });
      this.emit('memberAdded', app, channel, member.id, memberMarkMs > 0 ? join.rejoined : undefined);
    }
    if (type.cache) {
      const cached = await this.state.getCache(app.id, channel);
      if (cached) conn.send(cached.frame);
      else {
        conn.send(encodeFrame('pusher:cache_miss', {}, channel));
        this.emit('cacheMiss', app, channel);
      }
    }
    if (type.kind !== 'presence') this.countChanged(app, channel, change.count);
  }

  /**
   * Undoes a presence join whose subscribe failed. Nobody was told of the join; but one that took the mark
   * of the member's pending leave (a rejoin) has cancelled that leave, and the leave is owed again: the
   * removal sets a new mark and is reported like any leave.
   */
  private async rollBackJoin(app: AppOptions, channel: string, userId: string, join: MemberJoin, markMs: number): Promise<void> {
    const owed = markMs > 0 && join.rejoined;
    const left = await this.state.removeMember(app.id, channel, userId, owed ? markMs : 0);
    if (owed && left.removed) this.emit('memberRemoved', app, channel, userId, left.mark ?? undefined);
  }

  /** The presence member a subscribe joins as: from `channel_data`, or the signed-in user (protocol.md §1.9). */
  private presenceMember(conn: Connection, channelData: string | undefined): { id: string; info: string } | string {
    let userId: unknown;
    let userInfo: unknown;
    if (channelData === undefined) {
      if (conn.userId === null) return 'channel_data is required unless the connection is signed in';
      userId = conn.userId;
      userInfo = conn.userInfo;
    } else {
      const parsed = dataObject(channelData);
      if (!parsed) return 'channel_data must be a JSON object';
      userId = typeof parsed.user_id === 'number' ? String(parsed.user_id) : parsed.user_id;
      userInfo = parsed.user_info;
    }
    const problem = userIdProblem(userId);
    if (problem) return problem;
    const info = userInfo === undefined ? '{}' : JSON.stringify(userInfo);
    if (utf8Length(info) > conn.app.maxPresenceMemberBytes) return 'too-large';
    return { id: userId as string, info };
  }

  private async sendSubscribed(conn: Connection, channel: string, presence: boolean): Promise<void> {
    if (!presence) {
      conn.send(encodeFrame('pusher_internal:subscription_succeeded', {}, channel));
      return;
    }
    // Built by the state from parts escaped once per member (user_info stays JSON text, never parsed again).
    conn.sendFrame(await this.state.presenceSubscribedFrame(conn.app.id, channel));
  }

  /**
   * `herald:device`: the socket names its Web Push device (or forgets it, with null), so the device counts as
   * live on the socket's channels from now on, as if it had connected with `device_id`.
   */
  private async setDevice(conn: Connection, raw: unknown): Promise<void> {
    if (conn.closing) return;
    const id = dataObject(raw)?.device_id;
    if (id !== null && !isDeviceId(id)) return this.refuseDevice(conn);
    const previous = conn.deviceId;
    if (id !== previous) {
      conn.deviceId = id;
      for (const channel of conn.channels.keys()) {
        if (previous !== null) await this.state.removeLiveDevice(conn.app.id, channel, previous);
        if (id !== null) await this.state.addLiveDevice(conn.app.id, channel, id);
      }
    }
    conn.send(encodeFrame(DEVICE_SET_EVENT, { device_id: id }));
  }

  private refuseDevice(conn: Connection): void {
    if (conn.established && !conn.closing) this.sendError(conn, ERRORS.DEVICE_ID_INVALID.pusherCode, ERRORS.DEVICE_ID_INVALID.message);
  }

  private async unsubscribe(conn: Connection, raw: unknown): Promise<void> {
    const channel = dataObject(raw)?.channel;
    if (typeof channel !== 'string' || !conn.channels.has(channel)) return;
    await this.leave(conn, channel);
  }

  private async leave(conn: Connection, channel: string): Promise<void> {
    const app = conn.app;
    const memberId = conn.channels.get(channel);
    if (memberId === undefined) return;
    conn.channels.delete(channel);
    if (this.registry.leave(conn, channel)) await this.adapter.unsubscribe(app.id, channel);
    const change = await this.state.removeSubscriber(app.id, channel, this.markMs(app, channel, 'channel_vacated'));
    if (conn.deviceId !== null) await this.state.removeLiveDevice(app.id, channel, conn.deviceId);
    this.emit('unsubscribed', conn, channel);
    if (memberId !== null) {
      const left = await this.state.removeMember(app.id, channel, memberId, this.markMs(app, channel, 'member_removed'));
      if (left.removed) {
        await this.adapter.publish({
          appId: app.id,
          channel,
          frame: encodeFrame('pusher_internal:member_removed', { user_id: memberId }, channel),
        });
        this.emit('memberRemoved', app, channel, memberId, left.mark ?? undefined);
      }
    }
    if (change.vacated) this.emit('channelVacated', app, channel, change.mark ?? undefined);
    else if (memberId === null) this.countChanged(app, channel, change.count);
  }

  /**
   * `subscription_count` (protocol.md §1.3): sent on every change, but at most every 5 s per channel once
   * the channel has more than 100 subscribers, so a busy channel does not echo every join to everyone.
   */
  private countChanged(app: AppOptions, channel: string, count: number): void {
    if (!app.subscriptionCount || channelType(channel).kind === 'presence') return;
    const key = `${app.id}\n${channel}`;
    const pending = this.countTimers.get(key);
    if (pending) {
      pending.count = count;
      return;
    }
    this.sendCount(app, channel, count);
    if (count > SUBSCRIPTION_COUNT_THROTTLE_ABOVE) {
      const entry = {
        count,
        timer: setTimeout(() => {
          this.countTimers.delete(key);
          if (entry.count !== count) this.sendCount(app, channel, entry.count);
        }, SUBSCRIPTION_COUNT_THROTTLE_MS),
      };
      entry.timer.unref();
      this.countTimers.set(key, entry);
    }
  }

  private sendCount(app: AppOptions, channel: string, count: number): void {
    const frame = encodeFrame('pusher_internal:subscription_count', { subscription_count: count }, channel);
    this.adapter.publish({ appId: app.id, channel, frame }).catch((err: unknown) => this.log.error({ err, channel }, 'subscription_count publish failed'));
    this.emit('subscriptionCount', app, channel, count);
  }

  // ---------------------------------------------------------------- client events

  private async clientEvent(conn: Connection, event: string, channel: string | undefined, data: unknown): Promise<void> {
    const app = conn.app;
    const reject = (name: ErrorName) => this.sendError(conn, ERRORS[name].pusherCode, ERRORS[name].message);
    if (!app.clientEvents) return reject('CLIENT_EVENTS_DISABLED');
    if (event.length > app.maxEventNameLength) return reject('CLIENT_EVENT_NAME');
    if (typeof channel !== 'string' || !allowsClientEvents(channelType(channel).kind)) return reject('CLIENT_EVENT_CHANNEL');
    const memberId = conn.channels.get(channel);
    if (memberId === undefined) return reject('CLIENT_EVENT_NOT_SUBSCRIBED');
    if (app.maxClientEventsPerSecond >= 0) {
      const second = Math.floor(Date.now() / 1000);
      if (conn.rateSecond !== second) {
        conn.rateSecond = second;
        conn.rateCount = 0;
      }
      if (++conn.rateCount > app.maxClientEventsPerSecond) return reject('CLIENT_EVENT_RATE');
    }
    const text = encodeData(data);
    if (utf8Length(text) > app.maxEventBytes) return reject('CLIENT_EVENT_TOO_LARGE');
    // On presence channels the sender's id is added by the server, so receivers can trust it.
    const userId = memberId ?? undefined;
    await this.adapter.publish({ appId: app.id, channel, frame: encodeFrame(event, text, channel, userId), except: conn.socketId });
    this.emit('clientEvent', app, channel, event, text, conn.socketId, userId);
  }

  // ---------------------------------------------------------------- user sign-in and watchlist

  private async signin(conn: Connection, raw: unknown): Promise<void> {
    const data = dataObject(raw);
    const userData = data?.user_data;
    const app = conn.app;
    if (typeof userData !== 'string' || !this.verifySignature(conn, data?.auth, userAuthString(conn.socketId, userData))) {
      throw new HeraldError('SIGNIN_INVALID');
    }
    const user = dataObject(userData);
    const problem = user ? userIdProblem(user.id) : 'user_data must be a JSON object';
    if (!user || problem) throw new HeraldError('SIGNIN_INVALID', `Invalid signin: ${problem}`);
    const id = user.id as string;
    if (conn.userId !== null) {
      if (conn.userId !== id) throw new HeraldError('SIGNIN_OTHER_USER');
      conn.send(encodeFrame('pusher:signin_success', { user_data: userData }));
      return;
    }
    conn.userId = id;
    conn.userData = userData;
    conn.userInfo = user.user_info;
    await this.joinHidden(conn, userRoute(id));
    const first = await this.state.addUser(app.id, id);
    conn.send(encodeFrame('pusher:signin_success', { user_data: userData }));

    if (!app.watchlist) return;
    let watchlist = Array.isArray(user.watchlist) ? user.watchlist.filter((w): w is string => typeof w === 'string' && w !== '') : [];
    if (watchlist.length > DEFAULT_LIMITS.maxWatchlistSize) {
      this.sendError(conn, ERRORS.WATCHLIST_TOO_LONG.pusherCode, ERRORS.WATCHLIST_TOO_LONG.message);
      watchlist = watchlist.slice(0, DEFAULT_LIMITS.maxWatchlistSize);
    }
    for (const w of new Set(watchlist)) await this.joinHidden(conn, watchRoute(w));
    if (watchlist.length > 0) {
      const online = await this.state.onlineUsers(app.id, watchlist);
      const events: { name: string; user_ids: string[] }[] = [];
      if (online.size > 0) events.push({ name: 'online', user_ids: [...online] });
      const offline = watchlist.filter((w) => !online.has(w));
      if (offline.length > 0) events.push({ name: 'offline', user_ids: offline });
      conn.send(encodeFrame('pusher_internal:watchlist_events', { events }));
    }
    if (first) await this.publishWatchlist(app, id, 'online');
  }

  private async joinHidden(conn: Connection, route: string): Promise<void> {
    (conn.hidden ??= []).push(route);
    if (this.registry.join(conn, route)) await this.adapter.subscribe(conn.app.id, route);
  }

  private async publishWatchlist(app: AppOptions, userId: string, name: 'online' | 'offline'): Promise<void> {
    const frame = encodeFrame('pusher_internal:watchlist_events', { events: [{ name, user_ids: [userId] }] });
    await this.adapter.publish({ appId: app.id, channel: watchRoute(userId), frame });
  }

  // ---------------------------------------------------------------- delivery

  /** Every message from the adapter, this node's own included. */
  private onMessage(msg: AdapterMessage): void {
    const subs = this.registry.subscribers(msg.appId, msg.channel);
    if (!subs || subs.size === 0) return;
    if (msg.action === 'terminate') {
      for (const conn of [...subs]) void this.close(conn, 'TERMINATED');
      return;
    }
    if (msg.frame === undefined) return;
    // Framed once; every socket gets the same bytes.
    const framed = textFrame(msg.frame);
    let n = subs.size;
    // Two loops, so the common case (no `socket_id` to leave out) compares nothing per socket: comparing
    // each id with `undefined` was a generic equality call per recipient in optimized code.
    const except = msg.except;
    if (except === undefined) {
      for (const conn of subs) conn.sendFramed(framed);
    } else {
      for (const conn of subs) {
        if (conn.socketId === except) n--;
        else conn.sendFramed(framed);
      }
    }
    this.emit('delivered', msg.appId, msg.channel, n, payloadBytes(framed));
  }

  // ---------------------------------------------------------------- REST-facing operations

  /** Publishes one server event to channels; returns per-channel info when asked. */
  async publish(
    app: AppOptions,
    event: string,
    data: string,
    channels: string[],
    socketId: string | undefined,
    info: string[] = [],
  ): Promise<Record<string, { user_count?: number; subscription_count?: number }> | undefined> {
    // Built at the first channel that needs a frame: a trigger nobody receives escapes nothing.
    let frameFor: ((channel: string) => string) | null = null;
    for (const channel of channels) {
      const cache = channelType(channel).cache;
      // On a single node, a channel nobody is on needs no frame (a cache channel keeps its last event).
      if (!cache && !this.adapter.reachesOtherNodes && this.registry.subscribers(app.id, channel) === undefined) continue;
      frameFor ??= channelFrames(event, data);
      const frame = frameFor(channel);
      if (cache) await this.state.setCache(app.id, channel, frame, app.cacheTtlSeconds);
      await this.adapter.publish({ appId: app.id, channel, frame, except: socketId });
    }
    this.emit('published', app, channels, event, data, socketId);
    if (info.length === 0) return undefined;
    const out: Record<string, { user_count?: number; subscription_count?: number }> = {};
    for (const channel of channels) {
      const entry: { user_count?: number; subscription_count?: number } = {};
      if (info.includes('user_count') && channelType(channel).kind === 'presence') entry.user_count = await this.state.memberCount(app.id, channel);
      if (info.includes('subscription_count')) entry.subscription_count = await this.state.subscriberCount(app.id, channel);
      out[channel] = entry;
    }
    return out;
  }

  /**
   * Publishes like `publish`, then gives the Web Push fallback the channels' interest subscribers that have
   * no live socket on them. The `push` block is checked first (400/413/501), so a refused one sends nothing.
   */
  async publishWithPush(
    app: AppOptions,
    event: string,
    data: string,
    channels: string[],
    socketId: string | undefined,
    info: string[],
    push: unknown,
  ): Promise<{ info: Awaited<ReturnType<Gateway['publish']>>; publishId: string }> {
    const fallback = this.pushFallback;
    if (!fallback) throw new HeraldError('PUSH_NOT_CONFIGURED');
    const prepared = fallback.prepare(app, channels, event, push);
    const result = await this.publish(app, event, data, channels, socketId, info);
    return { info: result, publishId: await fallback.fallback(app, channels, prepared) };
  }

  /** Occupied channels, optionally by prefix; `user_count` only for presence prefixes (checked by the caller). */
  async channelList(
    app: AppOptions,
    prefix: string,
    withUserCount: boolean,
    withSubscriptionCount = false,
  ): Promise<Record<string, { user_count?: number; subscription_count?: number }>> {
    const channels = await this.state.channels(app.id, prefix);
    const out: Record<string, { user_count?: number; subscription_count?: number }> = {};
    for (const [name, count] of channels) {
      if (name.startsWith('#')) continue;
      const entry: { user_count?: number; subscription_count?: number } = {};
      if (withUserCount) entry.user_count = await this.state.memberCount(app.id, name);
      if (withSubscriptionCount) entry.subscription_count = count;
      out[name] = entry;
    }
    return out;
  }

  async channelInfo(app: AppOptions, channel: string, info: string[]): Promise<ChannelInfo> {
    const count = await this.state.subscriberCount(app.id, channel);
    const out: ChannelInfo = { occupied: count > 0 };
    if (info.includes('user_count')) out.user_count = await this.state.memberCount(app.id, channel);
    if (info.includes('subscription_count')) out.subscription_count = count;
    if (info.includes('cache')) {
      const cached = await this.state.getCache(app.id, channel);
      out.cache = cached ? { data: (JSON.parse(cached.frame) as { data: string }).data, ttl: cached.ttl } : null;
    }
    return out;
  }

  async users(app: AppOptions, channel: string): Promise<{ id: string }[]> {
    const members = await this.state.members(app.id, channel);
    return [...members.keys()].map((id) => ({ id }));
  }

  /** Closes every signed-in connection of a user, on every node. */
  async terminateUser(app: AppOptions, userId: string): Promise<void> {
    await this.adapter.publish({ appId: app.id, channel: userRoute(userId), action: 'terminate' });
  }

  // ---------------------------------------------------------------- cluster transitions

  /**
   * Transitions found by the cluster state rather than by a socket of this node: another node died and its
   * connections were removed, or this node's shares were restored after a Redis outage. Sends the frames
   * and observer events the socket path would have (each transition reaches exactly one node).
   */
  async applyTransitions(transitions: StateTransition[]): Promise<void> {
    for (const t of transitions) {
      const app = this.apps.byId(t.appId);
      if (!app) continue;
      switch (t.kind) {
        case 'memberRemoved':
          await this.adapter.publish({ appId: app.id, channel: t.channel, frame: encodeFrame('pusher_internal:member_removed', { user_id: t.userId }, t.channel) });
          this.emit('memberRemoved', app, t.channel, t.userId, t.mark);
          break;
        case 'memberAdded':
          await this.adapter.publish({
            appId: app.id,
            channel: t.channel,
            frame: encodeFrame('pusher_internal:member_added', `{"user_id":${JSON.stringify(t.userId)},"user_info":${t.info}}`, t.channel),
          });
          this.emit('memberAdded', app, t.channel, t.userId, t.rejoined);
          break;
        case 'vacated':
          this.emit('channelVacated', app, t.channel, t.mark);
          break;
        case 'occupied':
          this.emit('channelOccupied', app, t.channel, t.rejoined);
          this.countChanged(app, t.channel, t.count);
          break;
        case 'count':
          this.countChanged(app, t.channel, t.count);
          break;
        case 'userOffline':
        case 'userOnline':
          if (app.watchlist) await this.publishWatchlist(app, t.userId, t.kind === 'userOnline' ? 'online' : 'offline');
          break;
      }
    }
  }

  /**
   * After a broker outage: tells this node's sockets the cluster's current presence lists (a repeated
   * `subscription_succeeded`, which pusher-js takes as the new list) and the online state of the users they
   * watch, since events published while this node was cut off never reached it.
   */
  async resync(): Promise<void> {
    for (const [appId, channel] of [...this.registry.localChannels()]) {
      if (channelType(channel).kind !== 'presence') continue;
      const subs = this.registry.subscribers(appId, channel);
      if (!subs || subs.size === 0) continue;
      // One frame for the channel's every socket: a reply kept as text (RedisState) is framed here once,
      // not by ws once per socket.
      const reply = await this.state.presenceSubscribedFrame(appId, channel);
      const frame = typeof reply === 'string' ? [textFrame(reply)] : reply;
      for (const conn of subs) conn.sendFrame(frame);
    }
    for (const conn of this.registry.all()) {
      const head = watchRoute('');
      const watched = (conn.hidden ?? []).filter((r) => r.startsWith(head)).map((r) => r.slice(head.length));
      if (watched.length === 0 || !conn.app.watchlist) continue;
      const online = await this.state.onlineUsers(conn.app.id, watched);
      const events: { name: string; user_ids: string[] }[] = [];
      if (online.size > 0) events.push({ name: 'online', user_ids: [...online] });
      const offline = watched.filter((w) => !online.has(w));
      if (offline.length > 0) events.push({ name: 'offline', user_ids: offline });
      conn.send(encodeFrame('pusher_internal:watchlist_events', { events }));
    }
  }

  // ---------------------------------------------------------------- liveness

  /**
   * One timer for every socket: ping those silent longer than the advertised activity timeout (plus a
   * grace so a client's own ping arrives first), close with 4201 those that did not answer within
   * `pongTimeout`, and enforce the sign-in deadline of apps that require user authentication.
   */
  private sweep(): void {
    const now = Date.now();
    const idleMs = this.options.activityTimeout * 1000 + Math.min(5000, this.options.activityTimeout * 200);
    const pongMs = this.options.pongTimeout * 1000;
    // close() removes from these sets only after an await, so iterating them live is safe.
    for (const set of this.registry.connectionSets()) {
      for (const conn of set) {
        if (conn.closing) continue;
        if (conn.app.userAuthentication && conn.userId === null && now - conn.openedAt > conn.app.userAuthenticationTimeoutMs) {
          void this.close(conn, 'USER_AUTH_TIMEOUT');
        } else if (conn.pingSentAt !== 0) {
          if (now - conn.pingSentAt > pongMs) void this.close(conn, 'PONG_TIMEOUT');
        } else if (now - conn.lastSeen > idleMs) {
          conn.pingSentAt = now;
          conn.ws.ping();
        }
      }
    }
  }
}

/** `digits.digits` from a cryptographic source: socket ids are part of auth signatures, so unguessable. */
export function newSocketId(): string {
  return `${randomInt(1, 2 ** 47)}.${randomInt(1, 2 ** 47)}`;
}
