/**
 * Server-to-client text frames built once per publish (RFC 6455 §5.2): FIN set, opcode 1 (text), no mask
 * (servers never mask), no compression (`perMessageDeflate` is off). The same bytes are then written to
 * every subscriber's socket, so a fan-out of N costs one encode and N socket writes, not N framings.
 */
export function textFrame(text: string): Buffer {
  return textFrameStart(text, 0);
}

/**
 * A whole text frame kept in pieces, header first, to be written back to back: a presence reply holds every
 * member, and joining its pieces into one buffer would copy the whole list for each joiner.
 */
export type FramePieces = readonly Buffer[];

/**
 * The first piece of a text frame whose payload is `head` followed by `restBytes` more bytes: the frame
 * header and `head`'s UTF-8 bytes, in one buffer.
 */
export function textFrameStart(head: string, restBytes: number): Buffer {
  const headBytes = Buffer.byteLength(head);
  const length = headBytes + restBytes;
  const out = Buffer.allocUnsafe(headerBytes(length) + headBytes);
  out.write(head, writeHeader(out, length), 'utf8');
  return out;
}

/** The payload size of a frame built by `textFrame`, for byte counters that count payloads, as received ones do. */
export function payloadBytes(frame: Buffer): number {
  return frame.length - (frame[1] === 126 ? 4 : frame[1] === 127 ? 10 : 2);
}

function headerBytes(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

/** Writes the header of an unmasked text frame carrying `length` payload bytes; returns its size. */
function writeHeader(frame: Buffer, length: number): number {
  frame[0] = 0x81;
  if (length < 126) {
    frame[1] = length;
    return 2;
  }
  if (length < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
    return 4;
  }
  frame[1] = 127;
  frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
  frame.writeUInt32BE(length >>> 0, 6);
  return 10;
}
