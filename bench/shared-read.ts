/**
 * How the generator's sockets read: every read lands in one shared buffer, handed to a callback with its
 * length (`onread`), with no Buffer allocated and no stream machinery per read, which is most of a
 * generator's cost per delivery. Safe because each read is handled synchronously and whatever must
 * outlive it (a partial frame or response head) is copied out before the next read.
 */
import { connect as netConnect, type Socket } from 'node:net';

/** 64 KB: what libuv would allocate per read anyway. */
const SHARED_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** End of an HTTP head (RFC 9112 §2.1), for the WebSocket handshake and REST answers alike. */
export const HTTP_HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

export interface ReadingSocketOptions {
  host: string;
  port: number;
  localAddress?: string;
}

/**
 * A TCP connection with Nagle off whose reads go to `onData(buffer, bytes)`, the shared buffer: nothing may
 * keep it past the call.
 */
export function connectReading(opts: ReadingSocketOptions, onData: (buf: Buffer, len: number) => void): Socket {
  const socket = netConnect({
    host: opts.host,
    port: opts.port,
    localAddress: opts.localAddress,
    onread: {
      buffer: SHARED_READ_BUFFER,
      callback: (bytes: number) => {
        onData(SHARED_READ_BUFFER, bytes);
        return true;
      },
    },
  });
  socket.setNoDelay(true);
  return socket;
}
