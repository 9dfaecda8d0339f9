/**
 * A deliberately small Pusher WebSocket client over `node:net`, cheap enough that one generator core can
 * hold 20,000 sockets and count hundreds of thousands of deliveries per second.
 *
 * RFC 6455 in brief: the client sends an HTTP/1.1 Upgrade with a random `Sec-WebSocket-Key` and the server
 * answers 101 with `Sec-WebSocket-Accept = base64(sha1(key + GUID))` (§4.2.2). Frames are
 * `FIN|opcode`, `MASK|len7`, then a 16- or 64-bit length when len7 is 126 or 127 (§5.2). Client→server
 * frames must be masked, server→client frames must not be (§5.1). No extension is offered, so frames arrive
 * uncompressed.
 *
 * Deliveries are recognised by a byte search for the payload marker (payload.ts); only the rare control
 * events (connection_established, subscription_succeeded, errors) are parsed as JSON.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { giveBackFrameBuffer, takeFrameBuffer } from './frame-buffers';
import { MarkerCursor, findSentUs, nowUs } from './payload';
import { HTTP_HEAD_END, connectReading } from './shared-read';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
// One handshake key per generator process: servers do not track keys, and a fixed key lets the expected
// accept value be computed once instead of once per socket.
const HANDSHAKE_KEY = randomBytes(16).toString('base64');
const EXPECTED_ACCEPT = createHash('sha1').update(HANDSHAKE_KEY + WS_GUID).digest('base64');
const EVENT_FIELD = Buffer.from('"event":"', 'latin1');
const CHANNEL_FIELD = Buffer.from('"channel":"', 'latin1');

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;

/** What a connection reports to whoever counts. Called synchronously from the socket's data handler. */
export interface WsEvents {
  /** A benchmark event arrived; `sentUs`/`recvUs` are generator-clock microseconds. */
  onDelivery(sentUs: number, recvUs: number): void;
  /** Any other event by name (e.g. `pusher_internal:member_added`). */
  onOtherEvent?(name: string): void;
  /** The socket closed; `expected` is false unless `close()` was called. */
  onClose?(client: WsClient, expected: boolean): void;
}

export interface WsConnectOptions {
  host: string;
  port: number;
  /** Request path incl. query, e.g. `/app/KEY?protocol=7&client=js&version=8.4.0`. */
  path: string;
  localAddress?: string;
  timeoutMs: number;
  events: WsEvents;
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** One Pusher protocol connection. Create with `WsClient.connect`. */
export class WsClient {
  /** `socket_id` from `pusher:connection_established`. */
  socketId = '';
  closed = false;
  /** WebSocket close code sent by the server, if any. */
  closeCode: number | null = null;

  private upgraded = false;
  /** The start of a frame whose header was cut short by the end of a read, or the handshake so far. */
  private rest: Buffer | null = null;
  /** A frame that spans reads, in a buffer of its full size, and how much of it has arrived. */
  private big: Buffer | null = null;
  private bigFilled = 0;
  private readonly markers = new MarkerCursor();
  private fragments: Buffer[] | null = null;
  private expectedClose = false;
  private pendingOpen: Pending | null = null;
  private pendingSub: (Pending & { channel: string }) | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly events: WsEvents,
  ) {}

  /** Opens a socket and resolves once the server sent `pusher:connection_established`. */
  static connect(opts: WsConnectOptions): Promise<WsClient> {
    // Reads arrive in the generator's shared buffer (shared-read.ts); a partial frame is copied out.
    let client: WsClient | null = null;
    const socket = connectReading(opts, (buf, len) => client?.onData(buf, len));
    client = new WsClient(socket, opts.events);
    const c = client;
    return new Promise<WsClient>((resolve, reject) => {
      c.pendingOpen = {
        resolve: () => resolve(c),
        reject,
        timer: setTimeout(() => c.fail(new Error(`connect timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs),
      };
      socket.on('connect', () => {
        socket.write(
          `GET ${opts.path} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: ${HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      socket.on('error', (err) => c.fail(err));
      socket.on('close', () => c.onSocketClose());
    });
  }

  /** Sends `pusher:subscribe` and resolves on `pusher_internal:subscription_succeeded` for that channel. */
  subscribe(channel: string, timeoutMs: number, auth?: string, channelData?: string): Promise<void> {
    if (this.pendingSub !== null) return Promise.reject(new Error('one subscription at a time per connection'));
    const data: Record<string, string> = { channel };
    if (auth !== undefined) data.auth = auth;
    if (channelData !== undefined) data.channel_data = channelData;
    return new Promise<void>((resolve, reject) => {
      this.pendingSub = {
        channel,
        resolve,
        reject,
        timer: setTimeout(() => this.rejectSub(new Error(`subscribe ${channel} timed out after ${timeoutMs} ms`)), timeoutMs),
      };
      this.sendText(JSON.stringify({ event: 'pusher:subscribe', data }));
    });
  }

  /** Closes without a closing handshake: the harness only tears down, it does not test close semantics. */
  close(): void {
    this.expectedClose = true;
    this.socket.destroy();
  }

  private sendText(text: string): void {
    if (this.closed) return;
    this.socket.write(maskedFrame(OP_TEXT, Buffer.from(text, 'utf8')));
  }

  /** Receives one read of `chunkLen` bytes in `chunk`, the shared read buffer: nothing may keep it. */
  private onData(chunk: Buffer, chunkLen: number): void {
    // Every frame in one read arrived at the same moment; stamping once per chunk keeps the clock call off
    // the per-frame path.
    const recvUs = nowUs();
    let buf = chunk;
    let len = chunkLen;
    let off = 0;
    const big = this.big;
    if (big !== null) {
      // A frame that spans reads (a presence reply is ~100 KB) is copied once into a buffer of its size,
      // not re-joined with each read that brings more of it.
      const take = Math.min(big.length - this.bigFilled, chunkLen);
      chunk.copy(big, this.bigFilled, 0, take);
      this.bigFilled += take;
      if (this.bigFilled < big.length) return;
      this.big = null;
      this.onFrames(big, big.length, 0, recvUs);
      giveBackFrameBuffer(big);
      if (this.closed) return;
      off = take;
    } else if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk.subarray(0, chunkLen)]);
      len = buf.length;
      this.rest = null;
    }
    if (!this.upgraded) {
      const end = buf.subarray(0, len).indexOf(HTTP_HEAD_END);
      if (end < 0) {
        this.rest = Buffer.from(buf.subarray(0, len));
        return;
      }
      const head = buf.toString('latin1', 0, end);
      if (!/^HTTP\/1\.1 101 /.test(head)) {
        this.fail(new Error(`handshake refused: ${head.split('\r\n', 1)[0]}`));
        return;
      }
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head);
      if (accept === null || accept[1] !== EXPECTED_ACCEPT) {
        this.fail(new Error('handshake: wrong Sec-WebSocket-Accept'));
        return;
      }
      this.upgraded = true;
      off = end + HTTP_HEAD_END.length;
    }
    off = this.onFrames(buf, len, off, recvUs);
    if (this.closed || off >= len) return;
    // Keep the unfinished frame: in a buffer of its full size once its header is here, else (a header cut
    // short, a few bytes) as a copy joined with the next read. Copied either way, so that it pins no read
    // buffer.
    const total = frameBytes(buf, off, len);
    if (total > 0) {
      this.big = takeFrameBuffer(total);
      this.bigFilled = buf.copy(this.big, 0, off, len);
    } else {
      this.rest = Buffer.from(buf.subarray(off, len));
    }
  }

  /** Handles the whole frames in `buf[off, len)`; returns where the first unfinished one starts. */
  private onFrames(buf: Buffer, len: number, off: number, recvUs: number): number {
    this.markers.startRead(buf, len);
    while (len - off >= 2) {
      const b0 = buf[off];
      const b1 = buf[off + 1];
      if ((b1 & 0x80) !== 0) {
        this.fail(new Error('server sent a masked frame (RFC 6455 §5.1)'));
        return len;
      }
      const total = frameBytes(buf, off, len);
      if (total === 0 || len - off < total) break;
      const len7 = b1 & 0x7f;
      const start = off + (len7 < 126 ? 2 : len7 === 126 ? 4 : 10);
      off += total;
      this.onFrame(b0, buf, start, off, recvUs);
      if (this.closed) return len;
    }
    return off;
  }

  private onFrame(b0: number, buf: Buffer, start: number, end: number, recvUs: number): void {
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (opcode === OP_TEXT || opcode === OP_CONTINUATION) {
      if (!fin || this.fragments !== null) {
        (this.fragments ??= []).push(Buffer.from(buf.subarray(start, end)));
        if (!fin) return;
        const whole = Buffer.concat(this.fragments);
        this.fragments = null;
        this.onText(whole, 0, whole.length, recvUs, findSentUs(whole, 0, whole.length));
        return;
      }
      this.onText(buf, start, end, recvUs, this.markers.sentUs(start, end));
    } else if (opcode === OP_PING) {
      this.socket.write(maskedFrame(0xa, Buffer.from(buf.subarray(start, end))));
    } else if (opcode === OP_CLOSE) {
      this.closeCode = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
      this.socket.destroy();
    }
    // Binary and pong frames carry nothing the benchmark counts.
  }

  private onText(buf: Buffer, start: number, end: number, recvUs: number, sentUs: number): void {
    if (sentUs >= 0) {
      this.events.onDelivery(sentUs, recvUs);
      return;
    }
    const name = readStringField(buf, start, end, EVENT_FIELD);
    switch (name) {
      case 'pusher:connection_established':
        this.onEstablished(buf.toString('utf8', start, end));
        return;
      case 'pusher_internal:subscription_succeeded': {
        const sub = this.pendingSub;
        if (sub !== null && readStringField(buf, start, end, CHANNEL_FIELD) === sub.channel) {
          clearTimeout(sub.timer);
          this.pendingSub = null;
          sub.resolve();
        }
        return;
      }
      case 'pusher:subscription_error':
      case 'pusher:error': {
        const text = buf.toString('utf8', start, Math.min(end, start + 300));
        if (this.pendingSub !== null) this.rejectSub(new Error(`${name}: ${text}`));
        else if (this.pendingOpen !== null) this.fail(new Error(`${name}: ${text}`));
        return;
      }
      case 'pusher:ping':
        this.sendText('{"event":"pusher:pong","data":{}}');
        return;
      default:
        if (name !== null) this.events.onOtherEvent?.(name);
    }
  }

  private onEstablished(text: string): void {
    const open = this.pendingOpen;
    if (open === null) return;
    const msg = JSON.parse(text) as { data?: unknown };
    const data = (typeof msg.data === 'string' ? JSON.parse(msg.data) : msg.data) as { socket_id?: unknown };
    if (typeof data?.socket_id !== 'string') {
      this.fail(new Error(`connection_established without socket_id: ${text.slice(0, 200)}`));
      return;
    }
    this.socketId = data.socket_id;
    clearTimeout(open.timer);
    this.pendingOpen = null;
    open.resolve();
  }

  private rejectSub(err: Error): void {
    const sub = this.pendingSub;
    if (sub === null) return;
    clearTimeout(sub.timer);
    this.pendingSub = null;
    sub.reject(err);
  }

  /** Tears the socket down and rejects whatever is still waiting. */
  private fail(err: Error): void {
    const open = this.pendingOpen;
    if (open !== null) {
      clearTimeout(open.timer);
      this.pendingOpen = null;
      open.reject(err);
    }
    this.rejectSub(err);
    this.socket.destroy();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    const why = new Error(`socket closed${this.closeCode === null ? '' : ` with code ${this.closeCode}`}`);
    this.fail(why);
    this.events.onClose?.(this, this.expectedClose);
  }
}

/** A masked client frame (RFC 6455 §5.3): payload XOR a fresh 4-byte key. */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const header = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(header + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  const maskAt = header;
  randomBytes(4).copy(out, maskAt);
  for (let i = 0; i < len; i++) out[maskAt + 4 + i] = payload[i] ^ out[maskAt + (i & 3)];
  return out;
}

/** The event name read last, as bytes and text (see readStringField). */
let lastName = { bytes: Buffer.alloc(0), text: '' };

/**
 * Value of a top-level `"field":"…"` string in a JSON frame, found by byte search. Valid for the fields
 * read here (event and channel names), which never contain quotes or escapes; null when absent.
 *
 * Plain loops over the bytes rather than Buffer's indexOf and compare: every member_added frame of a
 * presence run comes through here, and each native call cost more than the whole short search.
 */

function readStringField(buf: Buffer, start: number, end: number, field: Buffer): string | null {
  // Servers put the event first (`{"event":"…`); anywhere else is found by a search within the frame.
  const at = bytesAt(buf, start + 1, field) ? start + 1 : buf.subarray(start, end).indexOf(field) + start;
  if (at < start) return null;
  const from = at + field.length;
  // Most frames repeat the previous frame's name: compare its bytes and the closing quote, and neither
  // scan for the quote nor decode a new string.
  const last = lastName.bytes;
  if (from + last.length < end && buf[from + last.length] === 0x22 && bytesAt(buf, from, last)) return lastName.text;
  let to = from;
  while (to < end && buf[to] !== 0x22) to++;
  if (to >= end) return null;
  const text = buf.toString('latin1', from, to);
  lastName = { bytes: Buffer.from(text, 'latin1'), text };
  return text;
}

/** Whether `buf` holds `bytes` at `at`. */
function bytesAt(buf: Buffer, at: number, bytes: Buffer): boolean {
  if (at + bytes.length > buf.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

/** Size of the frame starting at `buf[off]` (header included) once its header is within `len`, else 0. */
function frameBytes(buf: Buffer, off: number, len: number): number {
  if (len - off < 2) return 0;
  const len7 = buf[off + 1] & 0x7f;
  if (len7 < 126) return 2 + len7;
  if (len7 === 126) return len - off < 4 ? 0 : 4 + buf.readUInt16BE(off + 2);
  return len - off < 10 ? 0 : 10 + buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6);
}
