/**
 * Signature Version 4, checked as AWS checks it. Every request must carry an
 * `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header. With
 * no credentials configured any key is accepted (the header's presence and form are still
 * checked); with credentials configured the key must be one of them and the signature is
 * recomputed from the request and compared.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LambdaApiError } from './errors.js';

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface ParsedAuthorization {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

const missing = (): LambdaApiError => new LambdaApiError(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
const badKey = (): LambdaApiError => new LambdaApiError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
const badSignature = (): LambdaApiError =>
  new LambdaApiError(
    403,
    'InvalidSignatureException',
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
  );

/** Parses the Authorization header; throws the API's 403 when it is absent or malformed. */
export function parseAuthorization(req: IncomingMessage): ParsedAuthorization {
  const header = req.headers.authorization;
  if (header === undefined || header === '') throw missing();
  const m = /^AWS4-HMAC-SHA256\s+Credential=([^/\s]+)\/(\d{8})\/([^/\s]+)\/([^/\s]+)\/aws4_request,\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(header);
  if (m === null) {
    throw new LambdaApiError(403, 'IncompleteSignatureException', `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=${header}`);
  }
  return { accessKeyId: m[1]!, date: m[2]!, region: m[3]!, service: m[4]!, signedHeaders: m[5]!.split(';'), signature: m[6]! };
}

// RFC 3986 unreserved characters stay; everything else is percent-encoded, as the AWS signers do.
const escape = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** Recomputes the signature of a request (its body already read) with the given secret. */
export function signatureOf(req: IncomingMessage, body: Buffer, auth: ParsedAuthorization, secretAccessKey: string): string {
  const url = new URL(req.url ?? '/', 'http://localhost');
  // The signers escape each path segment of the already-encoded path again (all services but S3).
  const canonicalPath = url.pathname.split('/').map(escape).join('/');
  const query = [...url.searchParams.entries()]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [escape(k), escape(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers = auth.signedHeaders
    .map((name) => {
      const raw = req.headers[name];
      const value = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
      return `${name}:${value.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const declared = req.headers['x-amz-content-sha256'];
  const payloadHash = typeof declared === 'string' && declared !== '' ? declared : createHash('sha256').update(body).digest('hex');
  const canonical = [req.method ?? 'GET', canonicalPath, query, headers, auth.signedHeaders.join(';'), payloadHash].join('\n');
  const amzDate = req.headers['x-amz-date'];
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', typeof amzDate === 'string' ? amzDate : '', scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let key = hmac(`AWS4${secretAccessKey}`, auth.date);
  key = hmac(key, auth.region);
  key = hmac(key, auth.service);
  key = hmac(key, 'aws4_request');
  return createHmac('sha256', key).update(toSign).digest('hex');
}

/** Checks a request's signature against the configured credentials; throws the API's 403. */
export function verifySignature(req: IncomingMessage, body: Buffer, auth: ParsedAuthorization, credentials: readonly Credentials[]): void {
  const match = credentials.find((c) => c.accessKeyId === auth.accessKeyId);
  if (match === undefined) throw badKey();
  const expected = Buffer.from(signatureOf(req, body, auth, match.secretAccessKey));
  const given = Buffer.from(auth.signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw badSignature();
}
