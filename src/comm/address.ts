import { isIPv6 } from 'node:net';
import { InvalidAddressError } from './errors.js';

export type Scheme = 'tcp' | 'tls';

export interface Address {
  /** Absent when the string had no scheme (`host:port`): the caller decides. */
  readonly scheme: Scheme | undefined;
  /** Without brackets, also for IPv6. */
  readonly host: string;
  readonly port: number;
}

/** Parse `tcp://host:port`, `tls://host:port` or `host:port`; IPv6 hosts go in brackets. */
export function parseAddress(address: string): Address {
  const given: unknown = address; // untyped callers may pass a non-string
  if (typeof given !== 'string' || given === '') throw new InvalidAddressError(String(given), 'it is empty');
  let rest = address;
  let scheme: Scheme | undefined;
  const sep = rest.indexOf('://');
  if (sep >= 0) {
    const name = rest.slice(0, sep);
    if (name !== 'tcp' && name !== 'tls') {
      throw new InvalidAddressError(address, `unknown scheme '${name}://' (expected tcp:// or tls://)`);
    }
    scheme = name;
    rest = rest.slice(sep + 3);
  }
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') throw new InvalidAddressError(address, 'expected [ipv6]:port');
    host = rest.slice(1, close);
    portText = rest.slice(close + 2);
    if (!isIPv6(host)) throw new InvalidAddressError(address, `'${host}' is not an IPv6 address`);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon < 0) throw new InvalidAddressError(address, 'it has no port (expected host:port)');
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) throw new InvalidAddressError(address, 'an IPv6 host must be written in brackets, as [::1]:8786');
  }
  if (host === '' || /[\s/?#@]/.test(host)) throw new InvalidAddressError(address, `'${host}' is not a host name`);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new InvalidAddressError(address, `'${portText}' is not a port number (0-65535)`);
  }
  return { scheme, host, port: Number(portText) };
}

export function formatAddress(scheme: Scheme, host: string, port: number): string {
  return `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}
