/**
 * This node's own share of the cluster state, kept in memory by RedisState: connections per app,
 * subscriptions per channel, signed-in sockets per user and presence sockets per user. It is updated at the
 * moment each command is sent, so it is what Redis should hold for this node once every sent command has run.
 * Used to repair Redis after an outage (the shares are set back to these values), to answer while Redis is
 * unreachable, and to know where this node has shares (the `idx:N` set).
 */
export interface Delta {
  before: number;
  after: number;
}

interface AppShare {
  conns: number;
  subs: Map<string, number>;
  users: Map<string, number>;
}

interface PresenceShare {
  appId: string;
  channel: string;
  users: Map<string, { n: number; info: string }>;
}

function bump(map: Map<string, number>, key: string, d: number): Delta {
  const before = map.get(key) ?? 0;
  const after = Math.max(0, before + d);
  if (after === 0) map.delete(key);
  else map.set(key, after);
  return { before, after };
}

export class NodeLedger {
  private readonly apps = new Map<string, AppShare>();
  /** `${appId}\n${channel}` → presence share */
  private readonly presence = new Map<string, PresenceShare>();

  private app(appId: string): AppShare {
    let a = this.apps.get(appId);
    if (!a) {
      a = { conns: 0, subs: new Map(), users: new Map() };
      this.apps.set(appId, a);
    }
    return a;
  }

  /** Applies a delta to an app-level share field (`c`, `s:<channel>`, `u:<user>`). */
  applyApp(appId: string, field: string, d: number): Delta {
    const a = this.app(appId);
    if (field === 'c') {
      const before = a.conns;
      a.conns = Math.max(0, before + d);
      return { before, after: a.conns };
    }
    return bump(NodeLedger.map(a, field), field.slice(2), d);
  }

  appField(appId: string, field: string): number {
    const a = this.apps.get(appId);
    if (!a) return 0;
    if (field === 'c') return a.conns;
    return NodeLedger.map(a, field).get(field.slice(2)) ?? 0;
  }

  private static map(a: AppShare, field: string): Map<string, number> {
    return field.startsWith('s:') ? a.subs : a.users;
  }

  /** Every non-zero app-level share field of an app. */
  *appFields(appId: string): IterableIterator<string> {
    const a = this.apps.get(appId);
    if (!a) return;
    if (a.conns > 0) yield 'c';
    for (const ch of a.subs.keys()) yield `s:${ch}`;
    for (const u of a.users.keys()) yield `u:${u}`;
  }

  applyPresence(appId: string, channel: string, userId: string, d: number, info: string): Delta {
    const k = `${appId}\n${channel}`;
    let p = this.presence.get(k);
    if (!p) {
      p = { appId, channel, users: new Map() };
      this.presence.set(k, p);
    }
    const u = p.users.get(userId);
    const before = u?.n ?? 0;
    const after = Math.max(0, before + d);
    if (after === 0) p.users.delete(userId);
    else if (u) u.n = after;
    else p.users.set(userId, { n: after, info });
    if (p.users.size === 0) this.presence.delete(k);
    return { before, after };
  }

  presenceUser(appId: string, channel: string, userId: string): { n: number; info: string } | undefined {
    return this.presence.get(`${appId}\n${channel}`)?.users.get(userId);
  }

  hasPresence(appId: string, channel: string): boolean {
    return this.presence.has(`${appId}\n${channel}`);
  }

  /** Presence users of a channel on this node: id → { sockets, user_info }. */
  presenceUsers(appId: string, channel: string): ReadonlyMap<string, { n: number; info: string }> {
    return this.presence.get(`${appId}\n${channel}`)?.users ?? new Map();
  }

  /** Apps where this node has any share. */
  appIds(): string[] {
    const out: string[] = [];
    for (const [id, a] of this.apps) {
      if (a.conns > 0 || a.subs.size > 0 || a.users.size > 0) out.push(id);
      else this.apps.delete(id);
    }
    return out;
  }

  presenceChannels(): { appId: string; channel: string }[] {
    return [...this.presence.values()].map((p) => ({ appId: p.appId, channel: p.channel }));
  }

  subscriptions(appId: string): ReadonlyMap<string, number> {
    return this.apps.get(appId)?.subs ?? new Map();
  }

  users(appId: string): ReadonlyMap<string, number> {
    return this.apps.get(appId)?.users ?? new Map();
  }

  conns(appId: string): number {
    return this.apps.get(appId)?.conns ?? 0;
  }

  get empty(): boolean {
    return this.appIds().length === 0 && this.presence.size === 0;
  }
}
