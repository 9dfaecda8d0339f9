/**
 * Every Redis key Herald uses, in one place. Keys a Lua script touches together share a hash tag (`{app}`
 * or `{app:channel}`) so the scripts also run on Redis Cluster; app ids and presence/cache channel names
 * cannot contain braces, so the tag is always the intended one.
 *
 * Per app (`{A}`):     meta (hash: conns), chans (hash: channel → subscriptions),
 *                      users (hash: user → signed-in sockets), node:N (hash: node N's share of those three:
 *                      `c`, `s:<channel>`, `u:<user>` → count), rate:<bucket>, mark:vacate:<channel>
 *                      (a pending `channel_vacated`).
 * Per channel (`{A:C}`): members (hash: user → user_info), sockets (hash: user → sockets),
 *                      node:N (hash: user → node N's sockets), cache (last event, with a TTL),
 *                      left:<user> (a pending `member_removed`),
 *                      dev:N (hash: Web Push device → node N's sockets on the channel).
 * Cluster membership:  nodes (set of live node ids), hb:N (heartbeat, expires), claim:N (who is cleaning
 *                      up dead node N), idx:N (set of the `{A}` / `{A:C}` groups where node N has a share),
 *                      devidx:N (set of `A\nC` where node N has live devices).
 * Pub/sub:             m:{A:C} per routing channel.
 */
export interface RedisKeys {
  meta(app: string): string;
  chans(app: string): string;
  users(app: string): string;
  appNode(app: string, node: string): string;
  rate(app: string, bucket: string): string;
  /** Leave marks sit beside the count whose script sets them (see redis-scripts.ts): prefix + name. */
  channelMarks(app: string): string;
  memberMarks(app: string, channel: string): string;
  members(app: string, channel: string): string;
  sockets(app: string, channel: string): string;
  channelNode(app: string, channel: string, node: string): string;
  cache(app: string, channel: string): string;
  liveDevices(app: string, channel: string, node: string): string;
  deviceIndex(node: string): string;
  readonly nodes: string;
  heartbeat(node: string): string;
  claim(node: string): string;
  index(node: string): string;
  topic(app: string, channel: string): string;
}

/** Prefixes may not hold braces: they would move the hash tag. */
export function checkPrefix(prefix: string): void {
  if (/[{}]/.test(prefix)) throw new Error(`Redis key prefix '${prefix}' may not contain { or }`);
}

export function redisKeys(prefix: string): RedisKeys {
  checkPrefix(prefix);
  const p = prefix;
  return {
    meta: (a) => `${p}{${a}}:meta`,
    chans: (a) => `${p}{${a}}:chans`,
    users: (a) => `${p}{${a}}:users`,
    appNode: (a, n) => `${p}{${a}}:node:${n}`,
    rate: (a, b) => `${p}{${a}}:rate:${b}`,
    channelMarks: (a) => `${p}{${a}}:mark:vacate:`,
    memberMarks: (a, c) => `${p}{${a}:${c}}:left:`,
    members: (a, c) => `${p}{${a}:${c}}:members`,
    sockets: (a, c) => `${p}{${a}:${c}}:sockets`,
    channelNode: (a, c, n) => `${p}{${a}:${c}}:node:${n}`,
    cache: (a, c) => `${p}{${a}:${c}}:cache`,
    liveDevices: (a, c, n) => `${p}{${a}:${c}}:dev:${n}`,
    deviceIndex: (n) => `${p}devidx:${n}`,
    nodes: `${p}nodes`,
    heartbeat: (n) => `${p}hb:${n}`,
    claim: (n) => `${p}claim:${n}`,
    index: (n) => `${p}idx:${n}`,
    topic: (a, c) => `${p}m:{${a}:${c}}`,
  };
}

/** A group of keys where a node holds a share: an app (`a:A`) or a presence channel (`p:A:C`). */
export type ShareGroup = { kind: 'app'; appId: string } | { kind: 'presence'; appId: string; channel: string };

export function groupId(g: ShareGroup): string {
  return g.kind === 'app' ? `a:${g.appId}` : `p:${g.appId}:${g.channel}`;
}

export function parseGroupId(id: string): ShareGroup | null {
  const rest = id.slice(2);
  if (id.startsWith('a:')) return { kind: 'app', appId: rest };
  const i = rest.indexOf(':');
  if (id.startsWith('p:') && i > 0) return { kind: 'presence', appId: rest.slice(0, i), channel: rest.slice(i + 1) };
  return null;
}
