/** Counts deliveries and their latency for a scenario; the sink every benchmark connection reports to. */
import { LatencyHistogram } from './latency-histogram';
import type { WsEvents } from './ws-client';

export class DeliveryCounter implements WsEvents {
  /** Benchmark events received, over all connections. */
  count = 0;
  latency = new LatencyHistogram();
  /** Generator-clock time of the latest delivery (µs), to close the measured window on the last one. */
  lastRecvUs = 0;
  /**
   * Other events received (e.g. presence member_added) by name, over all connections. Boxed counts: one
   * lookup per event instead of a get and a set, for the millions of member_added of a presence run.
   */
  readonly otherEvents = new Map<string, { n: number }>();

  onDelivery(sentUs: number, recvUs: number): void {
    this.count++;
    this.latency.record(recvUs - sentUs);
    this.lastRecvUs = recvUs;
  }

  onOtherEvent(name: string): void {
    const count = this.otherEvents.get(name);
    if (count === undefined) this.otherEvents.set(name, { n: 1 });
    else count.n++;
  }

  other(name: string): number {
    return this.otherEvents.get(name)?.n ?? 0;
  }

  /** Forgets warm-up traffic so that figures cover the measured window only. */
  reset(): void {
    this.count = 0;
    this.latency = new LatencyHistogram();
    this.lastRecvUs = 0;
    this.otherEvents.clear();
  }
}
