/** Defaults for the limits of protocol.md §3 and §10, shared so that SDKs check input as the server does. */
export const DEFAULT_LIMITS = {
  maxEventBytes: 10 * 1024,
  maxEventNameLength: 200,
  maxChannelsPerEvent: 100,
  maxBatchSize: 10,
  maxChannelNameLength: 200,
  maxPresenceMembers: 100,
  maxPresenceMemberBytes: 1024,
  maxClientEventsPerSecond: 10,
  maxWatchlistSize: 100,
} as const;

/** Event names: non-empty, at most `max` characters. */
export function eventNameProblem(name: unknown, max: number = DEFAULT_LIMITS.maxEventNameLength): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'Event name must be a non-empty string';
  if (name.length > max) return `Event name is longer than ${max} characters`;
  return null;
}

/** UTF-8 byte length of a string, without allocating a Buffer (works in browsers too). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
