/**
 * The Pusher message envelope (protocol.md §1.2). Server-to-client `data` is always a JSON string ("double
 * encoding"); clients may send `data` as an object or a string.
 */

/** A decoded client-to-server message. */
export interface ClientMessage {
  event: string;
  channel?: string;
  data?: unknown;
}

/** A decoded server-to-client message, as the SDKs see it after the second decode. */
export interface ServerMessage {
  event: string;
  channel?: string;
  data?: unknown;
  user_id?: string;
}

/** `data` as the wire wants it: strings pass through, anything else is JSON-encoded once. */
export function encodeData(data: unknown): string {
  return typeof data === 'string' ? data : JSON.stringify(data === undefined ? {} : data);
}

/**
 * Encodes one server-to-client frame. Called once per publish and channel; the resulting string is written
 * unchanged to every recipient.
 */
export function encodeFrame(event: string, data?: unknown, channel?: string, userId?: string): string {
  const msg: ServerMessage = { event };
  if (channel !== undefined) msg.channel = channel;
  msg.data = encodeData(data);
  if (userId !== undefined) msg.user_id = userId;
  return JSON.stringify(msg);
}

/**
 * One event's frames for many channels: a REST trigger names up to 100, and escaping the same `data` for
 * each was most of what a channel cost the publish path. The event name and data are escaped once here;
 * each channel's frame is then three strings joined. Byte for byte `encodeFrame(event, data, channel)`
 * (test/unit/protocol-messages.test.ts holds them equal).
 */
export function channelFrames(event: string, data?: unknown): (channel: string) => string {
  const head = `{"event":${JSON.stringify(event)},"channel":`;
  const tail = `,"data":${JSON.stringify(encodeData(data))}}`;
  return (channel) => head + JSON.stringify(channel) + tail;
}

/** The outcome of decoding a client frame: a message, or the reason it was refused. */
export type DecodeResult = { ok: true; message: ClientMessage } | { ok: false; reason: string };

/** Decodes a client-to-server text frame. Pure: no exceptions escape. */
export function decodeClientFrame(text: string): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'Invalid JSON' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, reason: 'A message must be a JSON object' };
  }
  const o = parsed as Record<string, unknown>;
  if (typeof o.event !== 'string' || o.event.length === 0) {
    return { ok: false, reason: 'A message must have a string `event`' };
  }
  if (o.channel !== undefined && typeof o.channel !== 'string') {
    return { ok: false, reason: '`channel` must be a string' };
  }
  return { ok: true, message: { event: o.event, channel: o.channel as string | undefined, data: o.data } };
}

/**
 * Decodes a server-to-client frame the way pusher-js does: parse the envelope, then try to parse a string
 * `data` again, keeping the raw string when it is not JSON.
 */
export function decodeServerFrame(text: string): ServerMessage {
  const msg = JSON.parse(text) as ServerMessage;
  if (typeof msg.data === 'string') {
    try {
      msg.data = JSON.parse(msg.data);
    } catch {
      // Not JSON: pusher-js hands the raw string to the application, and so do we.
    }
  }
  return msg;
}

/** Client-to-server `data` as an object, accepting the stringified form some clients send. */
export function dataObject(data: unknown): Record<string, unknown> | null {
  let d = data;
  if (typeof d === 'string') {
    try {
      d = JSON.parse(d);
    } catch {
      return null;
    }
  }
  return d !== null && typeof d === 'object' && !Array.isArray(d) ? (d as Record<string, unknown>) : null;
}

/**
 * A presence member's pieces of a `pusher_internal:subscription_succeeded` frame, already escaped for the
 * frame's double-encoded `data`. Kept per member, they let a server append a join to a cached member list
 * instead of re-encoding every member for every subscriber (a join into a channel of n members would
 * otherwise cost O(n) JSON work). `info` is the member's `user_info` as JSON text.
 */
export interface PresenceMemberParts {
  /** `"id"`, escaped: an element of `presence.ids`. */
  id: string;
  /** `"id":info`, escaped: an entry of `presence.hash`. */
  entry: string;
}

/** Escapes JSON text for use inside the JSON string that carries a frame's `data`. */
function escapeForData(json: string): string {
  return JSON.stringify(json).slice(1, -1);
}

export function presenceMemberParts(id: string, info: string): PresenceMemberParts {
  const key = JSON.stringify(id);
  return { id: escapeForData(key), entry: escapeForData(`${key}:${info}`) };
}

/**
 * The presence `subscription_succeeded` frame from joined member parts (`ids` and `entries` are the parts'
 * `id`s and `entry`s joined with commas, in the same order). Byte for byte what `encodeFrame` gives for
 * `{presence: {ids, hash, count}}`; test/unit/protocol-messages.test.ts holds them equal.
 */
export function presenceSubscribedFrame(channel: string, ids: string, entries: string, count: number): string {
  return presenceFrameHead(channel) + ids + PRESENCE_FRAME_MIDDLE + entries + presenceFrameTail(count);
}

/** The three fixed pieces of {@link presenceSubscribedFrame}, around the joined ids and the joined entries. */
export function presenceFrameHead(channel: string): string {
  return `{"event":"pusher_internal:subscription_succeeded","channel":${JSON.stringify(channel)},"data":"{\\"presence\\":{\\"ids\\":[`;
}
export const PRESENCE_FRAME_MIDDLE = '],\\"hash\\":{';
export function presenceFrameTail(count: number): string {
  return `},\\"count\\":${count}}}"}`;
}

/** Members' parts joined for `presenceSubscribedFrame`, in the order given. */
export function joinPresenceParts(parts: Iterable<PresenceMemberParts>): { ids: string; entries: string } {
  const ids: string[] = [];
  const entries: string[] = [];
  for (const p of parts) {
    ids.push(p.id);
    entries.push(p.entry);
  }
  return { ids: ids.join(','), entries: entries.join(',') };
}

/** The presence `subscription_succeeded` frame for a member map (user id → `user_info` JSON text). */
export function presenceSubscribedFrameOf(channel: string, members: ReadonlyMap<string, string>): string {
  const { ids, entries } = joinPresenceParts(Array.from(members, ([id, info]) => presenceMemberParts(id, info)));
  return presenceSubscribedFrame(channel, ids, entries, members.size);
}
