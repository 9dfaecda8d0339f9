import { SERVER_TO_USER_PREFIX, type ServerMessage } from '../../protocol';
import { AuthError } from './auth';
import { Channel, type ChannelHost } from './channels/Channel';
import { Dispatcher } from './Dispatcher';
import type { UserAuthData } from './options';

/** The signed-in user, as `user_data` says. */
export interface UserData {
  id: string;
  user_info?: unknown;
  watchlist?: string[];
  [field: string]: unknown;
}

/**
 * User sign-in (`pusher:signin`, protocol.md §1.11), after pusher-js's `UserFacade`: signs in on every
 * connection once `signin()` was called, then receives `sendToUser` events on `#server-to-user-{id}`.
 * `user.bind(event, cb)` gets those events; `user.watchlist.bind('online' | 'offline', cb)` gets
 * `{name, user_ids}` for the watched users. Emits `pusher:signin_success` and `pusher:signin_error`.
 */
export class User extends Dispatcher {
  user_data: UserData | null = null;
  readonly watchlist = new Dispatcher();
  private requested = false;
  private channel: Channel | null = null;
  private settle: ((user: UserData | null) => void) | null = null;
  private done: Promise<UserData | null>;

  constructor(
    private readonly host: ChannelHost & { readonly connected: boolean },
    private readonly authenticate: (socketId: string) => Promise<UserAuthData>,
  ) {
    super();
    this.done = this.pending();
  }

  /** Signs in now if connected, else on connect; and again after every reconnect. */
  signin(): void {
    if (this.requested) return;
    this.requested = true;
    this.connected();
  }

  /**
   * Resolves with the user once signed in on this connection, or null when sign-in was not asked for or
   * failed. Presence subscriptions without `channel_data` wait on it.
   */
  whenSignedIn(): Promise<UserData | null> {
    return this.requested ? this.done : Promise.resolve(null);
  }

  /** @internal The connection is up. */
  connected(): void {
    const socketId = this.host.socketId;
    if (!this.requested || !this.host.connected || socketId === null) return;
    this.authenticate(socketId).then(
      (a) => {
        if (this.host.socketId === socketId) this.host.send('pusher:signin', { auth: a.auth, user_data: a.user_data });
      },
      (err: unknown) => this.failed(err instanceof AuthError ? err.status : undefined, (err as Error).message),
    );
  }

  /** @internal The connection dropped: the server forgot who we are. */
  disconnected(): void {
    this.user_data = null;
    this.channel?.disconnect();
    this.channel = null;
    if (this.settle === null) this.done = this.pending();
  }

  /** @internal Takes sign-in answers, watchlist events and the user channel's events. */
  handleMessage(msg: ServerMessage): void {
    if (msg.event === 'pusher:signin_success') this.succeeded(msg.data);
    else if (msg.event === 'pusher_internal:watchlist_events') {
      const events = (msg.data as { events?: { name: string; user_ids: string[] }[] } | undefined)?.events ?? [];
      for (const e of events) this.watchlist.emit(e.name, e);
    } else if (this.channel && msg.channel === this.channel.name) this.channel.handleEvent(msg);
  }

  private succeeded(data: unknown): void {
    let user: UserData;
    try {
      user = JSON.parse((data as { user_data: string }).user_data) as UserData;
    } catch {
      this.failed(undefined, 'signin_success carried no user_data');
      return;
    }
    if (typeof user.id !== 'string' || user.id === '') {
      this.failed(undefined, 'user_data has no id');
      return;
    }
    this.user_data = user;
    const channel = new Channel(`${SERVER_TO_USER_PREFIX}${user.id}`, this.host);
    channel.bind_global((event, payload) => {
      if (!event.startsWith('pusher:') && !event.startsWith('pusher_internal:')) this.emit(event, payload);
    });
    this.channel = channel;
    channel.subscribe();
    this.resolve(user);
    this.emit('pusher:signin_success', user);
  }

  private failed(status: number | undefined, error: string): void {
    this.host.log('warn', `Sign-in failed: ${error}`);
    this.resolve(null);
    this.emit('pusher:signin_error', { type: 'AuthError', error, status });
  }

  private pending(): Promise<UserData | null> {
    return new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  private resolve(user: UserData | null): void {
    const settle = this.settle;
    this.settle = null;
    settle?.(user);
  }
}
