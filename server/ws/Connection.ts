import type { WebSocket } from 'ws';
import type { AppOptions } from '../options/Options';

/**
 * One client socket and its protocol state. Kept small on purpose (a gateway holds tens of thousands):
 * no timers or closures per connection; liveness is swept by one timer in the gateway.
 */
export class Connection {
  /** channel → the presence user id this socket joined as, or null for other channel kinds. */
  readonly channels = new Map<string, string | null>();
  /** Hidden routing channels (`#user:{id}`, `#watch:{id}`) this socket receives. */
  readonly hidden: string[] = [];
  /** Signed-in user (`pusher:signin`), or null. */
  userId: string | null = null;
  userData: string | null = null;
  userInfo: unknown = undefined;
  /** ms timestamps for the liveness sweep. */
  lastSeen: number;
  pingSentAt = 0;
  readonly openedAt: number;
  /** Client-event budget for the current second. */
  rateSecond = 0;
  rateCount = 0;
  /** Set once the gateway counted this connection (quota) and registered it. */
  established = false;
  /** Set when the gateway has started tearing the connection down. */
  closing = false;
  /** Serialises this socket's messages: a subscribe finishes before the next message is handled. */
  tail: Promise<void> = Promise.resolve();

  constructor(
    readonly ws: WebSocket,
    readonly socketId: string,
    readonly app: AppOptions,
    readonly remoteAddress: string,
    /** Web Push device id from the `device_id` query parameter (our browser SDK sends it). */
    readonly deviceId: string | null,
  ) {
    this.openedAt = this.lastSeen = Date.now();
  }

  /** Writes a text frame. `data` may be a Buffer encoded once for many recipients. */
  send(data: string | Buffer): void {
    if (this.closing || this.ws.readyState !== 1) return;
    this.ws.send(data, { binary: false });
  }
}
