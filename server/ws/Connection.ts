import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { AppOptions } from '../options/Options';
import { payloadBytes, type FramePieces } from './frame';
import { joinedFrames, scheduleFlush, type Flushable } from './outbox';

/** The parts of ws 8's WebSocket that `sendFramed` relies on; test/unit/ws-frame.test.ts pins them. */
export interface WsInternals {
  _socket: Socket;
  _sender: { _state: number; _queue: unknown[] };
}

/** What a connection needs of its gateway: one object shared by every connection (no closure per socket). */
export interface ConnectionHost {
  /** Bytes a socket may have waiting to be sent; beyond them the client is too slow and is dropped. */
  readonly maxSendBufferBytes: number;
  tooSlow(conn: Connection, bufferedBytes: number): void;
}

/**
 * One client socket and its protocol state. Kept small on purpose (a gateway holds tens of thousands):
 * no timers or closures per connection; liveness is swept by one timer in the gateway.
 */
export class Connection implements Flushable {
  /** channel → the presence user id this socket joined as, or null for other channel kinds. */
  readonly channels = new Map<string, string | null>();
  /**
   * Hidden routing channels (`#user:{id}`, `#watch:{id}`) this socket receives; null until the first (most
   * sockets never sign in, and an empty array per idle socket is 32 bytes).
   */
  hidden: string[] | null = null;
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
  /**
   * Serialises this socket's messages: a subscribe finishes before the next message is handled. The last
   * queued task's promise, or null once the queue has run dry (no settled promise kept per idle socket).
   */
  tail: Promise<void> | null = null;
  /** Pre-built frames queued for this socket in the current turn of the event loop (outbox.ts); null when none. */
  private queued: Buffer | Buffer[] | null = null;

  constructor(
    readonly ws: WebSocket,
    readonly socketId: string,
    readonly app: AppOptions,
    readonly remoteAddress: string,
    /** Web Push device id: the `device_id` query parameter, or later `herald:device` (our browser SDK). */
    public deviceId: string | null,
    private readonly host: ConnectionHost,
  ) {
    this.openedAt = this.lastSeen = Date.now();
  }

  /** Writes one text frame to this socket alone, after whatever fan-out frames it has queued. */
  send(data: string | Buffer): void {
    if (this.closing || this.ws.readyState !== 1) return;
    this.flush();
    this.ws.send(data, { binary: false });
    this.checkBuffer();
  }

  /**
   * Writes a frame the state keeps as text, or as pieces of a built frame (a presence reply, see
   * presence-bytes.ts), to this socket alone. The pieces leave in one writev, without being joined. Such a
   * reply can on its own be larger than maxSendBufferBytes, so only what waits behind it counts there.
   */
  sendFrame(frame: string | FramePieces): void {
    if (this.closing || this.ws.readyState !== 1) return;
    this.flush();
    const socket = this.internals._socket;
    const before = socket.writableLength;
    if (typeof frame === 'string') {
      this.ws.send(frame, { binary: false });
    } else if (this.senderIdle()) {
      socket.cork();
      for (const piece of frame) socket.write(piece);
      socket.uncork();
    } else {
      this.sendThroughWs(Buffer.concat(frame));
    }
    this.checkBuffer(socket.writableLength - before);
  }

  /**
   * Queues a frame built once for many recipients (`textFrame`); every frame queued in this turn of the event
   * loop goes to the socket in one write (see outbox.ts).
   */
  sendFramed(framed: Buffer): void {
    if (this.closing || this.ws.readyState !== 1) return;
    const queued = this.queued;
    if (queued === null) {
      this.queued = framed;
      scheduleFlush(this);
    } else if (Array.isArray(queued)) {
      queued.push(framed);
    } else {
      this.queued = [queued, framed];
    }
  }

  /**
   * Writes the queued frames. While ws's sender is idle it would write exactly these bytes to the socket
   * itself, so they go straight there; when it is busy (a frame of its own still pending), each payload goes
   * through ws.send so frames never interleave.
   */
  flush(): void {
    const queued = this.queued;
    if (queued === null) return;
    this.queued = null;
    if (this.ws.readyState !== 1) return;
    if (this.senderIdle()) {
      // write() answers false once the socket's buffer reaches its high-water mark (16-64 KiB), below the
      // smallest maxSendBufferBytes the options accept (64 KiB); only then can the client be too slow, so
      // the common case skips the check.
      if (!this.internals._socket.write(Array.isArray(queued) ? joinedFrames(queued) : queued)) this.checkBuffer();
    } else {
      for (const framed of Array.isArray(queued) ? queued : [queued]) this.sendThroughWs(framed);
      this.checkBuffer();
    }
  }

  private get internals(): WsInternals {
    return this.ws as unknown as WsInternals;
  }

  /** A built frame through ws's own sender, which frames the payload again and queues it in order. */
  private sendThroughWs(framed: Buffer): void {
    this.ws.send(framed.subarray(framed.length - payloadBytes(framed)), { binary: false });
  }

  /**
   * Whether ws's sender has nothing of its own pending: it would then write exactly our frame bytes to the
   * socket itself, so we may write them there directly without interleaving with one of its frames.
   */
  private senderIdle(): boolean {
    const sender = this.internals._sender;
    return sender._state === 0 && sender._queue.length === 0;
  }

  /**
   * A client that does not read makes every write pile up in this process (the kernel's buffers fill
   * first); past the limit it is dropped rather than let one stuck tab grow the heap without bound.
   */
  private checkBuffer(justBuffered = 0): void {
    const buffered = this.internals._socket.writableLength;
    // The frame just buffered does not count against the client (see sendFrame): dropping a joiner for a
    // reply larger than the limit would only make it rejoin and be dropped again.
    if (buffered - justBuffered > this.host.maxSendBufferBytes) this.host.tooSlow(this, buffered);
  }
}
