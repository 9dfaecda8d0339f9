/**
 * Where the push device id is kept between visits: localStorage, read synchronously when the WebSocket
 * URL is built. Falls back to memory where storage is blocked (private modes, sandboxed frames).
 */
export class DeviceStore {
  private memory: string | null = null;
  private readonly key: string;

  constructor(appKey: string) {
    this.key = `herald:push:${appKey}:device`;
  }

  get(): string | null {
    try {
      return localStorage.getItem(this.key) ?? this.memory;
    } catch {
      return this.memory;
    }
  }

  set(deviceId: string | null): void {
    this.memory = deviceId;
    try {
      if (deviceId === null) localStorage.removeItem(this.key);
      else localStorage.setItem(this.key, deviceId);
    } catch {
      // Storage blocked: the in-memory copy serves this page's lifetime.
    }
  }
}
