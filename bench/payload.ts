/**
 * The 100-byte event payload and how a receiver finds the send time in it without parsing JSON.
 *
 * The `data` string is `~t=` + 15 zero-padded digits (generator clock in µs) + `;` + filler. Servers pass
 * `data` through as an opaque string, so the marker survives any re-serialisation (soketi re-stringifies per
 * socket) and a byte search finds it in the frame.
 */

/** Size of the event `data` string, as the issue specifies. */
export const PAYLOAD_BYTES = 100;

const MARKER = '~t=';
const MARKER_BYTES = Buffer.from(MARKER, 'latin1');
const DIGITS = 15;
const FILLER = 'x'.repeat(PAYLOAD_BYTES - MARKER.length - DIGITS - 1);

/** Generator clock in whole microseconds; monotonic, and shared by sender and receiver (same process). */
export function nowUs(): number {
  return Math.round(performance.now() * 1000);
}

/** A 100-byte `data` string carrying `sentUs`. */
export function makePayload(sentUs: number): string {
  return `${MARKER}${String(sentUs).padStart(DIGITS, '0')};${FILLER}`;
}

/**
 * Send time carried by the frame payload in `buf[start, end)`, or -1 when the frame is not a benchmark
 * delivery. Only the digits after the marker are read.
 */
export function findSentUs(buf: Buffer, start: number, end: number): number {
  // Searched within the frame only: a read holds many frames, and a search running on to the end of the
  // read for every frame without a marker (member_added, say) made the generator quadratic per read.
  const rel = buf.subarray(start, end).indexOf(MARKER_BYTES);
  return rel < 0 ? -1 : sentUsAt(buf, start + rel, end);
}

function sentUsAt(buf: Buffer, at: number, end: number): number {
  if (at + MARKER.length + DIGITS > end) return -1;
  let v = 0;
  for (let i = at + MARKER.length, stop = i + DIGITS; i < stop; i++) v = v * 10 + (buf[i] - 48);
  return v;
}

/**
 * `findSentUs` for the frames of one read, in order, in one forward pass and without allocating: the next
 * marker's position is found once and kept until the frames move past it, so a run of frames without a
 * marker costs one search in all, not one per frame.
 */
export class MarkerCursor {
  private buf: Buffer | null = null;
  /** Next marker at or after the frames still to come; -1: none in this read; -2: not searched yet. */
  private at = -2;

  /**
   * Starts on a read of `len` bytes in `buf`. The search is bounded by a view of those bytes: the shared
   * read buffer is 64 KB, and a read without a marker (a run of member_added) would otherwise be searched
   * to its end, through whatever earlier reads left there.
   */
  startRead(buf: Buffer, len: number): void {
    this.buf = len === buf.length ? buf : buf.subarray(0, len);
    this.at = -2;
  }

  sentUs(start: number, end: number): number {
    const buf = this.buf!;
    if (this.at === -2 || (this.at >= 0 && this.at < start)) this.at = buf.indexOf(MARKER_BYTES, start);
    if (this.at < 0 || this.at >= end) return -1;
    return sentUsAt(buf, this.at, end);
  }
}
