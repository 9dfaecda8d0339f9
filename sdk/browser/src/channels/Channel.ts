import { allowsClientEvents, channelType, encodeData, eventNameProblem, utf8Length, DEFAULT_LIMITS, type ChannelKind, type ServerMessage } from '../../../protocol';
import { AuthError } from '../auth';
import { Dispatcher } from '../Dispatcher';
import type { ChannelAuthData } from '../options';

/** What a channel needs from the client that owns it. */
export interface ChannelHost {
  readonly socketId: string | null;
  send(event: string, data: unknown, channel?: string): boolean;
  authorize(socketId: string, channelName: string): Promise<ChannelAuthData>;
  log(level: 'debug' | 'warn' | 'error', message: string): void;
}

/** `pusher:subscription_error` data, as pusher-js emits it. */
export interface SubscriptionError {
  type: string;
  error: string;
  status?: number;
}

/**
 * A channel: public, private or `#server-to-user-`. Subclasses add presence members and decryption.
 *
 * Events: the app's own, plus `pusher:subscription_succeeded`, `pusher:subscription_error`,
 * `pusher:subscription_count` and `pusher:cache_miss`.
 */
export class Channel extends Dispatcher {
  readonly kind: ChannelKind;
  subscribed = false;
  subscriptionPending = false;
  /** From `pusher_internal:subscription_count`, when the app sends it. */
  subscriptionCount: number | null = null;
  /** Bumped on every (un)subscribe so an auth answer that arrives late is dropped. */
  private generation = 0;

  constructor(
    readonly name: string,
    protected readonly host: ChannelHost,
  ) {
    super();
    this.kind = channelType(name).kind;
  }

  /**
   * Sends a client event to the other subscribers (protocol.md §1.7). Returns false when it could not be
   * sent now (not subscribed or not connected); throws on what can never work.
   */
  trigger(event: string, data?: unknown): boolean {
    if (!event.startsWith('client-')) throw new Error(`Client event names must start with client-: '${event}'`);
    const nameProblem = eventNameProblem(event);
    if (nameProblem) throw new Error(nameProblem);
    if (!allowsClientEvents(this.kind)) throw new Error(`Client events need a private- or presence- channel, not '${this.name}'`);
    const bytes = utf8Length(encodeData(data));
    if (bytes > DEFAULT_LIMITS.maxEventBytes) throw new Error(`Client event data is ${bytes} bytes; the limit is ${DEFAULT_LIMITS.maxEventBytes}`);
    if (!this.subscribed) {
      this.host.log('warn', `Client event ${event} not sent: ${this.name} is not subscribed yet`);
      return false;
    }
    return this.host.send(event, data, this.name);
  }

  /** Subscribes on the current connection (the client calls this on connect and on every reconnect). */
  subscribe(): void {
    const socketId = this.host.socketId;
    if (this.subscribed || this.subscriptionPending || socketId === null) return;
    this.subscriptionPending = true;
    const generation = ++this.generation;
    this.authorize(socketId).then(
      (auth) => {
        if (generation !== this.generation || this.host.socketId !== socketId) return;
        this.host.send('pusher:subscribe', { ...auth, channel: this.name });
      },
      (err: unknown) => {
        if (generation !== this.generation) return;
        this.subscriptionPending = false;
        const status = err instanceof AuthError ? err.status : undefined;
        this.host.log('error', `Could not authorize ${this.name}: ${(err as Error).message}`);
        this.emit('pusher:subscription_error', { type: (err as Error).name === 'EncryptionError' ? 'EncryptionError' : 'AuthError', error: (err as Error).message, status } satisfies SubscriptionError);
      },
    );
  }

  /** Leaves the channel; a pending authorization is dropped when it returns. */
  unsubscribe(): void {
    this.generation++;
    const was = this.subscribed || this.subscriptionPending;
    this.subscribed = false;
    this.subscriptionPending = false;
    if (was) this.host.send('pusher:unsubscribe', { channel: this.name });
  }

  /** The connection dropped: the server forgot the subscription, so will we until the next connect. */
  disconnect(): void {
    this.generation++;
    this.subscribed = false;
    this.subscriptionPending = false;
  }

  /** What `pusher:subscribe` carries besides the channel name; public channels need nothing. */
  protected authorize(socketId: string): Promise<Record<string, unknown>> {
    if (this.kind !== 'private') return Promise.resolve({});
    return this.host.authorize(socketId, this.name).then((a) => ({ auth: a.auth }));
  }

  handleEvent(msg: ServerMessage): void {
    switch (msg.event) {
      case 'pusher_internal:subscription_succeeded':
        this.subscriptionPending = false;
        this.subscribed = true;
        this.succeeded(msg.data);
        return;
      case 'pusher:subscription_error':
        this.subscriptionPending = false;
        this.emit('pusher:subscription_error', msg.data);
        return;
      case 'pusher_internal:subscription_count': {
        const count = (msg.data as { subscription_count?: unknown } | undefined)?.subscription_count;
        if (typeof count === 'number') this.subscriptionCount = count;
        this.emit('pusher:subscription_count', msg.data);
        return;
      }
      default:
        if (msg.event.startsWith('pusher_internal:')) this.internal(msg);
        else this.appEvent(msg);
    }
  }

  protected succeeded(data: unknown): void {
    this.emit('pusher:subscription_succeeded', data);
  }

  protected internal(msg: ServerMessage): void {
    this.host.log('debug', `Ignored ${msg.event} on ${this.name}`);
  }

  protected appEvent(msg: ServerMessage): void {
    if (msg.user_id !== undefined) this.emit(msg.event, msg.data, { user_id: msg.user_id });
    else this.emit(msg.event, msg.data);
  }
}
