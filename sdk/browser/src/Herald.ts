import { DEVICE_EVENT, DEVICE_SET_EVENT, channelNameProblem, channelType, type ServerMessage } from '../../protocol';
import { authenticateUser, authorizeChannel } from './auth';
import { Channel, type ChannelHost } from './channels/Channel';
import { EncryptedChannel, type Encryption } from './channels/EncryptedChannel';
import { PresenceChannel } from './channels/PresenceChannel';
import { ConnectionManager } from './ConnectionManager';
import { Dispatcher, type EventCallback, type GlobalCallback } from './Dispatcher';
import { resolveOptions, type ChannelAuthData, type HeraldOptions, type ResolvedOptions } from './options';
import { PushClient } from './push/PushClient';
import { pushBase, socketUrl } from './url';
import { User } from './User';

/** How long `push.register()` waits for Herald to confirm the device on the open connection. */
const DEVICE_ANSWER_MS = 5000;

/**
 * A Herald client: one connection, its channels, the signed-in user and Web Push. The API follows
 * pusher-js (`subscribe`, `bind`, `bind_global`, `connection.bind('state_change')`, `signin`), so code
 * written for pusher-js moves with few changes.
 */
export class Herald {
  /** Default decryption for encrypted channels; `herald-encryption.js` sets it when loaded as a script. */
  static encryption: Encryption | undefined;

  readonly key: string;
  readonly config: ResolvedOptions;
  readonly connection: ConnectionManager;
  readonly user: User;
  readonly push: PushClient;
  private readonly channels = new Map<string, Channel>();
  private readonly global = new Dispatcher();
  private readonly encryption: Encryption | undefined;
  private readonly host: ChannelHost & { readonly connected: boolean };

  constructor(key: string, options: HeraldOptions = {}) {
    if (typeof key !== 'string' || key === '') throw new Error('Herald needs the app key');
    this.key = key;
    this.config = resolveOptions(options);
    this.encryption = options.encryption;
    const endpoint = () => ({ host: this.config.host, port: this.config.port, tls: this.config.tls });
    this.push = new PushClient(key, () => pushBase(key, endpoint()), () => this.declareDevice());
    this.connection = new ConnectionManager(this.config, (tls) => socketUrl(key, { ...endpoint(), tls }, this.push.deviceId));

    const connection = this.connection;
    this.host = {
      get socketId() {
        return connection.socket_id;
      },
      get connected() {
        return connection.state === 'connected';
      },
      send: (event, data, channel) => this.connection.send(event, data, channel),
      authorize: (socketId, channelName): Promise<ChannelAuthData> => authorizeChannel(this.config, socketId, channelName),
      log: this.config.log,
    };
    this.user = new User(this.host, (socketId) => authenticateUser(this.config, socketId));

    this.connection.bind('state_change', ({ previous, current }: { previous: string; current: string }) => {
      if (current === 'connected') {
        for (const channel of this.channels.values()) channel.subscribe();
        this.user.connected();
      } else if (previous === 'connected') {
        for (const channel of this.channels.values()) channel.disconnect();
        this.user.disconnected();
      }
    });
    this.connection.bind('message', (msg: ServerMessage) => this.route(msg));
    if (options.autoConnect !== false) this.connect();
  }

  connect(): void {
    this.connection.connect();
  }

  disconnect(): void {
    this.connection.disconnect();
  }

  /** Subscribes (now if connected, else on connect) and returns the channel; the same one if already subscribed. */
  subscribe(name: string): Channel {
    const problem = channelNameProblem(name);
    if (problem) throw new Error(`${problem}: '${name}'`);
    let channel = this.channels.get(name);
    if (!channel) {
      channel = this.create(name);
      this.channels.set(name, channel);
    }
    channel.subscribe();
    return channel;
  }

  unsubscribe(name: string): void {
    const channel = this.channels.get(name);
    if (!channel) return;
    this.channels.delete(name);
    channel.unsubscribe();
  }

  channel(name: string): Channel | undefined {
    return this.channels.get(name);
  }

  allChannels(): Channel[] {
    return [...this.channels.values()];
  }

  /** Receives `event` from every channel (and connection-level events such as `pusher:error`). */
  bind(event: string, callback: EventCallback): this {
    this.global.bind(event, callback);
    return this;
  }

  unbind(event?: string, callback?: EventCallback): this {
    this.global.unbind(event, callback);
    return this;
  }

  bind_global(callback: GlobalCallback): this {
    this.global.bind_global(callback);
    return this;
  }

  unbind_global(callback?: GlobalCallback): this {
    this.global.unbind_global(callback);
    return this;
  }

  /** Signs in with `userAuthentication` now and after every reconnect (protocol.md §1.11). */
  signin(): void {
    this.user.signin();
  }

  /** Sends a raw event; false when not connected. */
  send_event(event: string, data: unknown, channel?: string): boolean {
    return this.connection.send(event, data, channel);
  }

  /** Reconnects so the handshake carries the current device id; resolves when connected again. */
  /**
   * Tells Herald the connection's new device id (`herald:device`) and resolves on its answer. The id also
   * goes in the URL of every later connection. A server that does not answer within 5 s (not Herald, or an
   * older one) gets the id by a reconnect instead.
   */
  private declareDevice(): Promise<void> {
    if (this.connection.state !== 'connected') return Promise.resolve();
    const deviceId = this.push.deviceId;
    return new Promise((resolve) => {
      const finish = (renew: boolean) => {
        clearTimeout(timer);
        this.connection.unbind('message', onMessage);
        if (renew) void this.renewConnection().then(resolve);
        else resolve();
      };
      const onMessage = (msg: ServerMessage) => {
        if (msg.event === DEVICE_SET_EVENT) finish(false);
        // A server that does not know the event says so ("Unknown event: herald:device").
        else if (msg.event === 'pusher:error' && JSON.stringify(msg.data ?? '').includes(DEVICE_EVENT)) finish(true);
      };
      const timer = setTimeout(() => finish(true), DEVICE_ANSWER_MS);
      this.connection.bind('message', onMessage);
      if (!this.connection.send(DEVICE_EVENT, { device_id: deviceId })) finish(true);
    });
  }

  private renewConnection(): Promise<void> {
    if (this.connection.state !== 'connected') return Promise.resolve();
    return new Promise((resolve) => {
      const done = ({ current }: { current: string }) => {
        if (current !== 'connected' && current !== 'failed' && current !== 'disconnected') return;
        this.connection.unbind('state_change', done);
        resolve();
      };
      this.connection.bind('state_change', done);
      this.connection.reconnect();
    });
  }

  private create(name: string): Channel {
    switch (channelType(name).kind) {
      case 'presence':
        return new PresenceChannel(name, this.host, async () => (await this.user.whenSignedIn())?.id ?? null);
      case 'private-encrypted':
        return new EncryptedChannel(name, this.host, this.encryption ?? Herald.encryption);
      default:
        return new Channel(name, this.host);
    }
  }

  private route(msg: ServerMessage): void {
    this.user.handleMessage(msg);
    if (msg.channel !== undefined) this.channels.get(msg.channel)?.handleEvent(msg);
    if (!msg.event.startsWith('pusher_internal:')) this.global.emit(msg.event, msg.data);
  }
}
