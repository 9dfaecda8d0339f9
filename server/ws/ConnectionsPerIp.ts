/**
 * Open sockets per client address on this node, for `maxConnectionsPerIp`. Node-local on purpose: a
 * load balancer spreads one address over nodes, and a shared count would cost a round trip per connect.
 */
export class ConnectionsPerIp {
  private readonly counts = new Map<string, number>();

  /** `max` < 0: unlimited, and nothing is counted. */
  constructor(private readonly max: number) {}

  /** Counts a socket from `ip`; false, counting nothing, when the address is at its limit. */
  take(ip: string): boolean {
    if (this.max < 0) return true;
    const n = this.counts.get(ip) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(ip, n + 1);
    return true;
  }

  /** Uncounts a socket that `take` accepted. */
  release(ip: string): void {
    if (this.max < 0) return;
    const n = (this.counts.get(ip) ?? 0) - 1;
    if (n > 0) this.counts.set(ip, n);
    else this.counts.delete(ip);
  }
}
