/**
 * Server-to-client text frames built once per publish (RFC 6455 §5.2): FIN set, opcode 1 (text), no mask
 * (servers never mask), no compression (`perMessageDeflate` is off). The same bytes are then written to
 * every subscriber's socket, so a fan-out of N costs one encode and N socket writes, not N framings.
 */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81;
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.write(text, header, 'utf8');
  return frame;
}

/** The payload size of a frame built by `textFrame`, for byte counters that count payloads, as received ones do. */
export function payloadBytes(frame: Buffer): number {
  return frame.length - (frame[1] === 126 ? 4 : frame[1] === 127 ? 10 : 2);
}
