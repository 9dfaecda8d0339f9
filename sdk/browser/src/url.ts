/** The WebSocket URL (protocol.md §1.1) and the HTTP base of the push device API. Pure. */

/** This SDK's version, sent as `version` and in `client`. */
export const VERSION = '0.1.0';
export const PROTOCOL = 7;

export interface Endpoint {
  host: string;
  port: number;
  tls: boolean;
}

/** `ws(s)://host:port/app/{key}?protocol=7&client=herald-js&version=…[&device_id=…]`. */
export function socketUrl(key: string, e: Endpoint, deviceId: string | null): string {
  const query = `protocol=${PROTOCOL}&client=herald-js&version=${VERSION}&flash=false${deviceId ? `&device_id=${encodeURIComponent(deviceId)}` : ''}`;
  return `${e.tls ? 'wss' : 'ws'}://${hostPort(e)}/app/${encodeURIComponent(key)}?${query}`;
}

/** `http(s)://host:port/push/v1/{key}`. */
export function pushBase(key: string, e: Endpoint): string {
  return `${e.tls ? 'https' : 'http'}://${hostPort(e)}/push/v1/${encodeURIComponent(key)}`;
}

function hostPort(e: Endpoint): string {
  const host = e.host.includes(':') && !e.host.startsWith('[') ? `[${e.host}]` : e.host;
  const defaultPort = e.tls ? 443 : 80;
  return e.port === defaultPort ? host : `${host}:${e.port}`;
}
