/**
 * Many WebSocket connections to one server: opened with bounded concurrency from rotating loopback source
 * addresses, tracked so that every one is closed when the scenario ends.
 */
import { openFileCount, openFilesLimit } from './proc-stats';
import { forEachBounded } from './load-patterns';
import { WsClient, type WsEvents } from './ws-client';

/**
 * 127.0.0.2 … 127.0.0.17. Each source address has its own ephemeral port range towards the server's
 * address and port, so 16 of them allow far more sockets than the ~28k ports of one (Linux routes all of
 * 127.0.0.0/8 to `lo`).
 */
export const SOURCE_ADDRESSES: readonly string[] = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);

/** File descriptors kept free for the REST agent, /proc reads, logs and the like. */
const FD_RESERVE = 64;
const CONNECT_TIMEOUT_MS = 15_000;

export interface FleetTarget {
  host: string;
  port: number;
  key: string;
  /** PID of the server when known, to check its open-file limit too. */
  pid: number | null;
}

export class WsFleet {
  readonly clients: WsClient[] = [];
  /** Established connections the server closed while the scenario ran. */
  unexpectedCloses = 0;

  private readonly path: string;
  private readonly events: WsEvents;
  private nextSource = 0;
  private closing = false;

  constructor(
    private readonly target: FleetTarget,
    sink: WsEvents,
  ) {
    this.path = `/app/${encodeURIComponent(target.key)}?protocol=7&client=js&version=8.4.0`;
    this.events = {
      onDelivery: (sentUs, recvUs) => sink.onDelivery(sentUs, recvUs),
      onOtherEvent: (name) => sink.onOtherEvent?.(name),
      onClose: (client, expected) => {
        if (!expected && client.socketId !== '') this.unexpectedCloses++;
      },
    };
  }

  /**
   * Opens `count` more connections, at most `concurrency` handshakes at a time, and runs `then` on each
   * once it is established (typically a subscribe). Rejects on the first failure.
   */
  async open(
    count: number,
    concurrency: number,
    then?: (client: WsClient, i: number) => Promise<void>,
  ): Promise<WsClient[]> {
    this.checkFileLimits(count);
    const opened: WsClient[] = new Array<WsClient>(count);
    await forEachBounded(count, concurrency, async (i) => {
      if (this.closing) throw new Error('fleet closed while connecting');
      const client = await WsClient.connect({
        host: this.target.host,
        port: this.target.port,
        path: this.path,
        localAddress: SOURCE_ADDRESSES[this.nextSource++ % SOURCE_ADDRESSES.length],
        timeoutMs: CONNECT_TIMEOUT_MS,
        events: this.events,
      });
      this.clients.push(client);
      opened[i] = client;
      if (this.closing) client.close();
      if (then !== undefined) await then(client, i);
    });
    return opened;
  }

  /** Closes every connection opened so far; further `open` calls fail. */
  closeAll(): void {
    this.closing = true;
    for (const c of this.clients) c.close();
    this.clients.length = 0;
  }

  /** Refuses to start what the open-file limits cannot hold, with the fix in the message. */
  private checkFileLimits(more: number): void {
    const check = (who: string, pid: number | 'self'): void => {
      const limit = openFilesLimit(pid);
      const need = openFileCount(pid) + more + FD_RESERVE;
      if (need > limit) {
        throw new Error(
          `${who} open-file limit (ulimit -n) is ${limit} but ~${need} descriptors are needed; ` +
            `run 'ulimit -n ${need + 1000}' (as root or within the hard limit) before 'npm run bench'`,
        );
      }
    };
    check('generator', 'self');
    if (this.target.pid !== null) check('server', this.target.pid);
  }
}
