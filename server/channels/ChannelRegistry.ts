import type { Connection } from '../ws/Connection';

/**
 * Local connection state: which sockets of this node are in which channel. Every operation is O(1); the
 * cluster-wide counts live in ClusterState, not here.
 */
export class ChannelRegistry {
  /**
   * appId → channel → subscribers on this node. Two lookups rather than one on a joined `${appId}\n${channel}`
   * key: the joined key was a new string to build and hash on every publish (twice per channel of a
   * trigger), where the app id and the channel name each keep their hash once computed.
   */
  private readonly channels = new Map<string, Map<string, Set<Connection>>>();
  /** appId → connections on this node */
  private readonly apps = new Map<string, Set<Connection>>();
  private total = 0;

  addConnection(conn: Connection): void {
    let set = this.apps.get(conn.app.id);
    if (!set) {
      set = new Set();
      this.apps.set(conn.app.id, set);
    }
    set.add(conn);
    this.total++;
  }

  removeConnection(conn: Connection): void {
    const set = this.apps.get(conn.app.id);
    if (set?.delete(conn)) {
      this.total--;
      if (set.size === 0) this.apps.delete(conn.app.id);
    }
  }

  /** Adds `conn` to a channel; true when it is the channel's first subscriber on this node. */
  join(conn: Connection, channel: string): boolean {
    let app = this.channels.get(conn.app.id);
    if (!app) {
      app = new Map();
      this.channels.set(conn.app.id, app);
    }
    let set = app.get(channel);
    if (!set) {
      set = new Set();
      app.set(channel, set);
    }
    set.add(conn);
    return set.size === 1;
  }

  /** Removes `conn` from a channel; true when it was the last subscriber on this node. */
  leave(conn: Connection, channel: string): boolean {
    const app = this.channels.get(conn.app.id);
    const set = app?.get(channel);
    if (!app || !set || !set.delete(conn)) return false;
    if (set.size > 0) return false;
    app.delete(channel);
    if (app.size === 0) this.channels.delete(conn.app.id);
    return true;
  }

  subscribers(appId: string, channel: string): ReadonlySet<Connection> | undefined {
    return this.channels.get(appId)?.get(channel);
  }

  connections(appId: string): ReadonlySet<Connection> | undefined {
    return this.apps.get(appId);
  }

  /** Every connection on this node, as a snapshot (cold paths: shutdown, resync). */
  all(): Connection[] {
    const out: Connection[] = [];
    for (const set of this.apps.values()) for (const conn of set) out.push(conn);
    return out;
  }

  /**
   * The per-app connection sets, for the once-a-second liveness sweep: two plain loops over live sets
   * allocate nothing per connection, where a generator (`yield*`) allocated a result object per socket.
   */
  connectionSets(): IterableIterator<ReadonlySet<Connection>> {
    return this.apps.values();
  }

  get size(): number {
    return this.total;
  }

  /** Channels with subscribers on this node (for resubscribing after a broker reconnect). */
  *localChannels(): IterableIterator<[appId: string, channel: string]> {
    for (const [appId, app] of this.channels) for (const channel of app.keys()) yield [appId, channel];
  }
}
