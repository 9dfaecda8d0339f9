/**
 * Signed `POST /apps/ID/events` on keep-alive connections, over `node:net` with a small HTTP/1.1 reader.
 * Signing is split from sending so that throughput scenarios can sign a pool up front, and each request is
 * turned into its bytes once, when signed: sending is one socket write.
 *
 * Why not `node:http`: its client cost the generator 80–90 µs of CPU per request on this VM (agent, request
 * and response objects, streams, header objects), more than the server spent answering. At flat out the
 * generator's core then ran at ~90 % and the server waited for requests, paying an event-loop wake-up per
 * request, so `rest-no-subs` measured the generator more than the server.
 *
 * The reader handles what servers answer here: a status line, headers, and a body framed by
 * `Content-Length`, by `Transfer-Encoding: chunked`, or by the server closing the connection
 * (RFC 9112 §6.3). One request at a time per connection (no pipelining); `Connection: close` (soketi
 * answers every request so) retires the connection and the next request opens a new one.
 */
import type { Socket } from 'node:net';
import { HTTP_HEAD_END, connectReading } from './shared-read';
import { signedRestPath, type AppCredentials } from './signing';

export interface ServerAddress {
  host: string;
  port: number;
}

/** A request ready to send: its path with the auth query, and the whole request as bytes. */
export interface SignedRequest {
  path: string;
  bytes: Buffer;
}

const REQUEST_TIMEOUT_MS = 10_000;
/** Enough of a failed answer's body to say what went wrong. */
const ERROR_TEXT_CHARS = 300;

interface InFlight {
  resolve(): void;
  reject(err: Error): void;
  startedMs: number;
}

/** How the response body ends (RFC 9112 §6.3). */
type BodyFraming = { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

/** One keep-alive connection and the response it is reading. */
class HttpConnection {
  inFlight: InFlight | null = null;
  /** False once the server said `Connection: close` or the socket ended: not reused. */
  reusable = true;
  closed = false;
  private head: Buffer | null = null;
  private status = 0;
  private framing: BodyFraming | null = null;
  /** Chunked bodies: bytes not yet parsed (a size line cut by a read, say). */
  private chunkRest: Buffer | null = null;
  private chunkState: 'size' | 'data' | 'data-end' = 'size';
  private chunkDataLeft = 0;
  private bodyText = '';
  readonly socket: Socket;

  constructor(
    server: ServerAddress,
    private readonly onDone: (conn: HttpConnection, status: number, bodyText: string) => void,
    private readonly onFail: (conn: HttpConnection, err: Error) => void,
  ) {
    this.socket = connectReading(server, (buf, len) => this.onData(buf, len));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.onClose());
  }

  send(bytes: Buffer, inFlight: InFlight): void {
    this.inFlight = inFlight;
    this.head = null;
    this.status = 0;
    this.framing = null;
    this.chunkRest = null;
    this.chunkState = 'size';
    this.chunkDataLeft = 0;
    this.bodyText = '';
    this.socket.write(bytes);
  }

  /** Closes the socket for good; its 'close' then reports nothing (whoever destroys it has settled it). */
  destroy(): void {
    this.reusable = false;
    this.closed = true;
    this.socket.destroy();
  }

  private onData(buf: Buffer, len: number): void {
    if (this.inFlight === null) {
      this.fail(new Error(`server sent ${len} bytes with no request outstanding`));
      return;
    }
    let off = 0;
    if (this.framing === null) {
      const joined = this.head === null ? buf.subarray(0, len) : Buffer.concat([this.head, buf.subarray(0, len)]);
      const end = joined.indexOf(HTTP_HEAD_END);
      if (end < 0) {
        this.head = Buffer.from(joined);
        return;
      }
      this.head = null;
      if (!this.parseHead(joined.toString('latin1', 0, end))) return;
      buf = joined;
      len = joined.length;
      off = end + HTTP_HEAD_END.length;
    }
    this.onBody(buf, off, len);
  }

  /** Status and body framing from the response head; false (after failing) when it is not HTTP/1.x. */
  private parseHead(head: string): boolean {
    const lines = head.split('\r\n');
    const statusLine = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0]);
    if (statusLine === null) {
      this.fail(new Error(`not an HTTP/1.x response: ${lines[0].slice(0, 100)}`));
      return false;
    }
    this.status = Number(statusLine[2]);
    let length = -1;
    let chunked = false;
    let connection = statusLine[1] === '0' ? 'close' : 'keep-alive';
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(':');
      if (colon < 0) continue;
      const name = lines[i].slice(0, colon).trim().toLowerCase();
      const value = lines[i].slice(colon + 1).trim().toLowerCase();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = value.split(',').pop()?.trim() === 'chunked';
      else if (name === 'connection') connection = value;
    }
    if (connection.split(',').some((t) => t.trim() === 'close')) this.reusable = false;
    if (chunked) this.framing = { kind: 'chunked' };
    // 204 and 304 answers have no body whatever their headers say (RFC 9112 §6.3).
    else if (this.status === 204 || this.status === 304) this.framing = { kind: 'length', left: 0 };
    else if (length >= 0 && Number.isSafeInteger(length)) this.framing = { kind: 'length', left: length };
    else {
      this.framing = { kind: 'close' };
      this.reusable = false;
    }
    return true;
  }

  private onBody(buf: Buffer, off: number, len: number): void {
    const framing = this.framing as BodyFraming;
    if (framing.kind === 'length') {
      const take = Math.min(framing.left, len - off);
      this.keepText(buf, off, off + take);
      framing.left -= take;
      if (framing.left === 0) {
        if (off + take < len) this.fail(new Error(`server sent ${len - off - take} bytes past the response`));
        else this.finish();
      }
    } else if (framing.kind === 'close') {
      this.keepText(buf, off, len);
    } else {
      this.onChunked(buf, off, len);
    }
  }

  /** Walks `size CRLF data CRLF` chunks up to the `0 CRLF CRLF` that ends them (no trailers expected). */
  private onChunked(buf: Buffer, off: number, len: number): void {
    if (this.chunkRest !== null) {
      buf = Buffer.concat([this.chunkRest, buf.subarray(off, len)]);
      off = 0;
      len = buf.length;
      this.chunkRest = null;
    }
    while (off < len) {
      if (this.chunkState === 'data') {
        const take = Math.min(this.chunkDataLeft, len - off);
        this.keepText(buf, off, off + take);
        this.chunkDataLeft -= take;
        off += take;
        if (this.chunkDataLeft === 0) this.chunkState = 'data-end';
        continue;
      }
      if (this.chunkState === 'data-end') {
        if (len - off < 2) break;
        off += 2;
        this.chunkState = 'size';
        continue;
      }
      const lineEnd = buf.indexOf('\r\n', off, 'latin1');
      if (lineEnd < 0 || lineEnd >= len) break;
      const size = parseInt(buf.toString('latin1', off, lineEnd).split(';')[0], 16);
      if (!Number.isFinite(size) || size < 0) {
        this.fail(new Error('bad chunk size in a chunked response'));
        return;
      }
      if (size === 0) {
        // The last chunk, then an empty trailer section: one more CRLF.
        if (len - lineEnd - 2 < 2) break;
        this.finish();
        return;
      }
      off = lineEnd + 2;
      this.chunkDataLeft = size;
      this.chunkState = 'data';
    }
    if (off < len) this.chunkRest = Buffer.from(buf.subarray(off, len));
  }

  private keepText(buf: Buffer, from: number, to: number): void {
    if (to > from && this.bodyText.length < ERROR_TEXT_CHARS) this.bodyText += buf.toString('utf8', from, Math.min(to, from + ERROR_TEXT_CHARS));
  }

  private finish(): void {
    const status = this.status;
    const bodyText = this.bodyText;
    this.framing = null;
    this.onDone(this, status, bodyText);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.destroy();
    this.onFail(this, err);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.reusable = false;
    // A body framed by the close ends here; anything else cut short is an error.
    if (this.inFlight !== null && this.framing?.kind === 'close') this.finish();
    else if (this.inFlight !== null) this.onFail(this, new Error('connection closed before the response was complete'));
    else this.onFail(this, new Error('connection closed'));
  }
}

export interface RestClientOptions {
  /** A request that has no whole answer after this long fails; 10 s unless set. */
  requestTimeoutMs?: number;
}

/** REST client for one app; counts failed answers instead of throwing so a run reports them. */
export class RestClient {
  ok = 0;
  failed = 0;
  /** Status and body of the first failed answer, for the error report. */
  firstFailure: string | null = null;
  /**
   * TCP connections opened. Stays at the pool size when the server keeps connections alive; soketi answers
   * every request with `Connection: close`, so there it grows by one per request.
   */
  connectionsOpened = 0;

  private readonly eventsPath: string;
  private readonly hostHeader: string;
  private readonly requestTimeoutMs: number;
  private readonly idle: HttpConnection[] = [];
  /** Connections open or opening, idle or busy; at most `maxSockets`. */
  private readonly open = new Set<HttpConnection>();
  /** Requests waiting for a connection while all `maxSockets` are busy. */
  private readonly queue: { bytes: Buffer; inFlight: InFlight }[] = [];
  /** One timer for every request's deadline, not one per request. */
  private sweep: NodeJS.Timeout | null = null;
  private closedClient = false;

  constructor(
    private readonly server: ServerAddress,
    private readonly app: AppCredentials,
    private readonly maxSockets: number,
    options: RestClientOptions = {},
  ) {
    this.eventsPath = `/apps/${app.appId}/events`;
    this.hostHeader = `${server.host}:${server.port}`;
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  }

  /** Signs a trigger of event `bench` with `data` to `channels`, timestamped now. */
  signTrigger(channels: string[], data: string): SignedRequest {
    const body = Buffer.from(JSON.stringify({ name: 'bench', data, channels }), 'utf8');
    const path = signedRestPath(this.app, 'POST', this.eventsPath, body, Math.floor(Date.now() / 1000));
    const head =
      `POST ${path} HTTP/1.1\r\nHost: ${this.hostHeader}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n`;
    return { path, bytes: Buffer.concat([Buffer.from(head, 'latin1'), body]) };
  }

  /** Sends a signed request and resolves when the whole response was read. Rejects on network errors. */
  post(req: SignedRequest): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.closedClient) {
        reject(new Error('REST client closed'));
        return;
      }
      const inFlight: InFlight = { resolve, reject, startedMs: performance.now() };
      this.sweep ??= setInterval(() => this.expire(), Math.min(1000, this.requestTimeoutMs)).unref();
      const conn = this.idle.pop() ?? this.openConnection();
      if (conn === null) this.queue.push({ bytes: req.bytes, inFlight });
      else conn.send(req.bytes, inFlight);
    });
  }

  /** Throws when every request failed: the figures would describe error handling, not triggering. */
  assertUsable(): void {
    if (this.ok === 0 && this.failed > 0) throw new Error(`every REST trigger failed; first: ${this.firstFailure}`);
  }

  /** Forgets warm-up requests so that counts cover the measured window only. */
  resetCounts(): void {
    this.ok = 0;
    this.failed = 0;
    this.connectionsOpened = 0;
  }

  close(): void {
    this.closedClient = true;
    if (this.sweep !== null) clearInterval(this.sweep);
    this.sweep = null;
    for (const conn of [...this.open]) {
      conn.destroy();
      conn.inFlight?.reject(new Error('REST client closed'));
      conn.inFlight = null;
    }
    this.open.clear();
    this.idle.length = 0;
    for (const waiting of this.queue.splice(0)) waiting.inFlight.reject(new Error('REST client closed'));
  }

  private openConnection(): HttpConnection | null {
    if (this.open.size >= this.maxSockets) return null;
    const conn = new HttpConnection(
      this.server,
      (c, status, body) => this.onAnswer(c, status, body),
      (c, err) => this.onConnectionFailed(c, err),
    );
    this.open.add(conn);
    this.connectionsOpened++;
    return conn;
  }

  private onAnswer(conn: HttpConnection, status: number, body: string): void {
    const inFlight = conn.inFlight as InFlight;
    conn.inFlight = null;
    // soketi answers a bad signature with status 200 and an `{"error":…}` body, so the body is checked too.
    if (status >= 200 && status < 300 && !body.startsWith('{"error"')) {
      this.ok++;
    } else {
      this.failed++;
      this.firstFailure ??= `HTTP ${status}: ${body.slice(0, ERROR_TEXT_CHARS)}`;
    }
    if (conn.reusable) this.release(conn);
    else {
      this.open.delete(conn);
      conn.destroy();
      this.startQueued();
    }
    inFlight.resolve();
  }

  private onConnectionFailed(conn: HttpConnection, err: Error): void {
    this.open.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    const inFlight = conn.inFlight;
    conn.inFlight = null;
    this.startQueued();
    inFlight?.reject(err);
  }

  /** A connection finished its request: the next queued request takes it, or it waits in the pool. */
  private release(conn: HttpConnection): void {
    const next = this.queue.shift();
    if (next === undefined) this.idle.push(conn);
    else conn.send(next.bytes, next.inFlight);
  }

  /** A connection went away: a queued request may now open a new one. */
  private startQueued(): void {
    if (this.queue.length === 0 || this.closedClient) return;
    const conn = this.openConnection();
    if (conn === null) return;
    const next = this.queue.shift() as { bytes: Buffer; inFlight: InFlight };
    conn.send(next.bytes, next.inFlight);
  }

  /** Fails requests past their deadline; their connections are dropped (a late answer would confuse them). */
  private expire(): void {
    const deadline = performance.now() - this.requestTimeoutMs;
    for (const conn of this.open) {
      if (conn.inFlight !== null && conn.inFlight.startedMs < deadline) {
        conn.destroy();
        this.onConnectionFailed(conn, new Error(`REST request timed out after ${this.requestTimeoutMs} ms`));
      }
    }
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].inFlight.startedMs < deadline) {
        this.queue[i].inFlight.reject(new Error(`REST request timed out after ${this.requestTimeoutMs} ms`));
        this.queue.splice(i, 1);
      }
    }
  }
}
