/**
 * What the dashboard and the workers' metrics servers share: which hosts are loopback,
 * how a bearer token is checked, and how a listening address is shown to people.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';

/** Whether `host` (a name or an IP, IPv6 with or without brackets) is this machine's loopback. */
export function isLoopback(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** A token's digest: compared in constant time, whatever the lengths. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Whether `candidate` is the token whose digest is `expected`. */
export function tokenMatches(candidate: string | undefined, expected: Buffer): boolean {
  return candidate !== undefined && timingSafeEqual(tokenDigest(candidate), expected);
}

/**
 * The token of an `Authorization: Bearer TOKEN` header, or undefined. The scheme is
 * case-insensitive (RFC 9110 §11.1), so `bearer` and `BEARER` count too.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^bearer[ \t]+(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}

/** A host to print in a link: a wildcard address becomes the machine's name; IPv6 gets brackets. */
export function shownHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return hostname();
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
