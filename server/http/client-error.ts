/**
 * What Node's HTTP parser refuses before fastify sees a request (a request line and headers over Node's
 * 16 KB, a malformed request, one not received in time) is answered from the error table like every other
 * error: the table's status and `{ "error": … }`, then the socket is closed. fastify's default answer has
 * another shape (`error`, `message`, `statusCode`), which clients reading `error` would show as a bare
 * "Request Header Fields Too Large".
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { ERRORS, type ErrorName } from '../errors';

/** The table's name for a parser error code (`HPE_…`, `ERR_HTTP_REQUEST_TIMEOUT`). */
export function clientErrorName(code: string | undefined): ErrorName {
  if (code === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'REQUEST_TIMEOUT';
  return 'BAD_REQUEST';
}

/** fastify's `clientErrorHandler` (bound to the instance, so `this.log` is the server's logger). */
export function answerClientError(this: { log: FastifyBaseLogger }, err: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset socket is gone: nobody is left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e = ERRORS[clientErrorName(err.code)];
  this.log.debug({ err: err.code ?? err.message, status: e.status }, 'HTTP request refused by the parser');
  const body = JSON.stringify({ error: e.message });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}
