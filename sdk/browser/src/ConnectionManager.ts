import { closeAction, decodeServerFrame, type CloseAction, type ServerMessage } from '../../protocol';
import { Dispatcher } from './Dispatcher';
import type { ResolvedOptions } from './options';
import { reconnectDelay } from './reconnect';

export type ConnectionState = 'initialized' | 'connecting' | 'connected' | 'unavailable' | 'disconnected' | 'failed';

/** Code used when this client gives up on a socket itself (pong timeout, handshake timeout). */
const CLIENT_ABANDONED = 4201;
const NORMAL_CLOSURE = 1000;

/**
 * The connection state machine (after pusher-js's `ConnectionManager`), one socket at a time:
 *
 *   initialized ─connect→ connecting ─handshake→ connected ─close→ connecting (after a delay) …
 *   connecting ─unavailableTimeout or offline→ unavailable (still retrying; `online` retries at once)
 *   any ─close code says "do not reconnect" (4000-4099, 43xx)→ failed
 *   any ─disconnect()→ disconnected
 *
 * The delay before each attempt comes from the close code (`closeAction`) and the number of failed
 * attempts (`reconnectDelay`). While connected, silence longer than the activity timeout sends
 * `pusher:ping`; no answer within `pongTimeout` abandons the socket and reconnects.
 *
 * Events: `state_change` `{previous, current}`, each state's name, `connecting_in` (seconds), `message`
 * (every decoded frame once connected), `error` (`{type, data}`).
 */
export class ConnectionManager extends Dispatcher {
  state: ConnectionState = 'initialized';
  /** Set while connected. */
  socket_id: string | null = null;
  private ws: WebSocket | null = null;
  private useTLS: boolean;
  private attempt = 0;
  private activityTimeout: number;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private unavailableTimer: ReturnType<typeof setTimeout> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private activityTimer: ReturnType<typeof setTimeout> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onOnline = () => this.online();
  private readonly onOffline = () => this.offline();

  constructor(
    private readonly options: ResolvedOptions,
    /** Builds the URL for each attempt (the push device id may change between attempts). */
    private readonly url: (tls: boolean) => string,
  ) {
    super();
    this.useTLS = options.tls;
    this.activityTimeout = options.activityTimeout;
    if (typeof window !== 'undefined') {
      window.addEventListener('online', this.onOnline);
      window.addEventListener('offline', this.onOffline);
    }
  }

  connect(): void {
    if (this.state === 'connecting' || this.state === 'connected' || this.state === 'unavailable') return;
    if (typeof WebSocket === 'undefined') {
      this.setState('failed');
      this.emit('error', { type: 'WebSocketUnsupported', data: { message: 'This browser has no WebSocket' } });
      return;
    }
    this.attempt = 0;
    this.setState('connecting');
    this.armUnavailable();
    if (isOffline()) this.setState('unavailable');
    else this.open();
  }

  /** Closes the connection and stops reconnecting until `connect()`. */
  disconnect(): void {
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    this.socket_id = null;
    if (ws) closeQuietly(ws, NORMAL_CLOSURE);
    if (this.state !== 'initialized') this.setState('disconnected');
  }

  /** Drops the current socket and connects again at once (e.g. to send a new device id). */
  reconnect(): void {
    if (this.state !== 'connected') return;
    this.abandon('retry');
  }

  /** Stops listening to the browser's online/offline events; for a client that will not be used again. */
  destroy(): void {
    this.disconnect();
    if (typeof window !== 'undefined') {
      window.removeEventListener('online', this.onOnline);
      window.removeEventListener('offline', this.onOffline);
    }
  }

  /** Sends one frame; false when not connected. `data` is sent as an object, as pusher-js does. */
  send(event: string, data: unknown, channel?: string): boolean {
    if (this.state !== 'connected' || !this.ws) return false;
    const frame: { event: string; data: unknown; channel?: string } = { event, data };
    if (channel !== undefined) frame.channel = channel;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // ---------------------------------------------------------------- socket lifecycle

  private open(): void {
    clearTimeout(this.retryTimer);
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url(this.useTLS));
    } catch (err) {
      // A malformed URL: retrying cannot help.
      this.clearTimers();
      this.setState('failed');
      this.emit('error', { type: 'WebSocketError', data: { message: (err as Error).message } });
      return;
    }
    this.ws = ws;
    ws.onmessage = (e: MessageEvent) => {
      if (ws === this.ws && typeof e.data === 'string') this.onFrame(e.data);
    };
    ws.onclose = (e: CloseEvent) => {
      if (ws === this.ws) this.onClose(e.code, e.reason);
    };
    ws.onerror = () => this.options.log('debug', 'WebSocket error (a close follows)');
    this.handshakeTimer = setTimeout(() => {
      if (ws === this.ws && this.state !== 'connected') {
        this.options.log('warn', `No handshake within ${this.options.unavailableTimeout} ms; retrying`);
        this.abandon('reconnect');
      }
    }, this.options.unavailableTimeout);
  }

  private onFrame(text: string): void {
    let msg: ServerMessage;
    try {
      msg = decodeServerFrame(text);
    } catch {
      this.emit('error', { type: 'MessageParseError', data: text });
      return;
    }
    if (this.state !== 'connected') {
      this.handshake(msg);
      return;
    }
    this.heardFrom();
    if (msg.event === 'pusher:ping') this.send('pusher:pong', {});
    else if (msg.event === 'pusher:error') this.emit('error', { type: 'PusherError', data: msg.data });
    this.emit('message', msg);
  }

  /** Until `pusher:connection_established`, only it and `pusher:error` (then a close) are expected. */
  private handshake(msg: ServerMessage): void {
    if (msg.event === 'pusher:error') {
      this.emit('error', { type: 'PusherError', data: msg.data });
      return;
    }
    const data = msg.data as { socket_id?: unknown; activity_timeout?: unknown } | undefined;
    if (msg.event !== 'pusher:connection_established' || typeof data?.socket_id !== 'string') {
      this.options.log('error', `Invalid handshake: ${msg.event}`);
      this.abandon('backoff');
      return;
    }
    const serverTimeout = typeof data.activity_timeout === 'number' && data.activity_timeout > 0 ? data.activity_timeout * 1000 : Infinity;
    this.activityTimeout = Math.min(this.options.activityTimeout, serverTimeout);
    this.socket_id = data.socket_id;
    this.attempt = 0;
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.unavailableTimer);
    this.setState('connected');
    this.heardFrom();
  }

  private onClose(code: number, reason: string): void {
    this.ws = null;
    if (code >= 4000) this.emit('error', { type: 'PusherError', data: { code, message: reason } });
    this.lost(closeAction(code));
  }

  /** Gives up on the current socket without waiting for its close handshake (a dead peer never answers). */
  private abandon(action: CloseAction): void {
    const ws = this.ws;
    this.ws = null;
    if (ws) closeQuietly(ws, CLIENT_ABANDONED);
    this.lost(action);
  }

  /** The socket is gone: schedule the next attempt as `action` asks, or fail. */
  private lost(action: CloseAction): void {
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.activityTimer);
    clearTimeout(this.pongTimer);
    this.socket_id = null;
    if (action === 'tls_only') this.useTLS = true;
    const delay = reconnectDelay(action, this.attempt++, Math.random, this.options.backoff);
    if (delay === null) {
      this.clearTimers();
      this.setState('failed');
      return;
    }
    if (this.state === 'connected') {
      this.setState('connecting');
      this.armUnavailable();
    }
    if (isOffline()) {
      // Retrying without a network only burns battery; `online` resumes.
      this.setState('unavailable');
      return;
    }
    this.emit('connecting_in', Math.round(delay / 1000));
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private armUnavailable(): void {
    clearTimeout(this.unavailableTimer);
    this.unavailableTimer = setTimeout(() => {
      if (this.state === 'connecting') this.setState('unavailable');
    }, this.options.unavailableTimeout);
  }

  // ---------------------------------------------------------------- liveness

  /** Any frame proves the socket alive: restart the idle timer, cancel a pending pong wait. */
  private heardFrom(): void {
    clearTimeout(this.activityTimer);
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
    this.activityTimer = setTimeout(() => this.checkAlive(), this.activityTimeout);
  }

  private checkAlive(): void {
    if (this.state !== 'connected' || this.pongTimer !== undefined) return;
    this.send('pusher:ping', {});
    this.pongTimer = setTimeout(() => {
      this.options.log('warn', `No pong within ${this.options.pongTimeout} ms; reconnecting`);
      this.abandon('retry');
    }, this.options.pongTimeout);
  }

  private online(): void {
    if (this.state === 'unavailable' || this.state === 'connecting') {
      this.attempt = 0;
      if (!this.ws) this.open();
    }
  }

  private offline(): void {
    // The socket may survive a short outage; a ping tells within pongTimeout.
    if (this.state === 'connected') this.checkAlive();
    else if (this.state === 'connecting' && !this.ws) {
      clearTimeout(this.retryTimer);
      this.setState('unavailable');
    }
  }

  private clearTimers(): void {
    for (const t of [this.retryTimer, this.unavailableTimer, this.handshakeTimer, this.activityTimer, this.pongTimer]) clearTimeout(t);
    this.pongTimer = undefined;
  }

  private setState(next: ConnectionState): void {
    const previous = this.state;
    if (previous === next) return;
    this.state = next;
    this.options.log('debug', `State ${previous} -> ${next}`);
    this.emit('state_change', { previous, current: next });
    this.emit(next);
  }
}

function isOffline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

function closeQuietly(ws: WebSocket, code: number): void {
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = null;
  try {
    ws.close(code);
  } catch {
    // Closing a socket that never opened can throw in old browsers; it is being dropped either way.
  }
}
