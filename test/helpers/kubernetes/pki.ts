/**
 * The certificates a test cluster needs, made with openssl into one directory: a cluster CA
 * that signs the API server's serving certificate, its client certificate for kubelets, and
 * each node's kubelet serving certificate; and the service-account signing key pair.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where one certificate and its key were written, and the certificate itself. */
export interface IssuedCertificate {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

export interface CertificateRequest {
  /** File name stem: `<name>.crt`, `<name>.key`. */
  name: string;
  commonName: string;
  /** Subject organisations: Kubernetes reads them as the user's groups. */
  organizations?: readonly string[];
  ips?: readonly string[];
  dnsNames?: readonly string[];
  usage: 'server' | 'client' | 'both';
}

/** An openssl config with nothing in it, so that the system's defaults add no extension. */
const EMPTY_CONFIG = '[req]\ndistinguished_name = dn\n[dn]\n';

export class ClusterPki {
  readonly caFile: string;
  readonly caKeyFile: string;
  readonly serviceAccountKeyFile: string;
  readonly serviceAccountPublicKeyFile: string;

  private constructor(
    readonly dir: string,
    readonly caPem: string,
  ) {
    this.caFile = path.join(dir, 'ca.crt');
    this.caKeyFile = path.join(dir, 'ca.key');
    this.serviceAccountKeyFile = path.join(dir, 'service-account.key');
    this.serviceAccountPublicKeyFile = path.join(dir, 'service-account.pub');
  }

  /** Makes the CA and the service-account keys in `dir` (which must exist). */
  static async create(dir: string): Promise<ClusterPki> {
    writeFileSync(path.join(dir, 'openssl.cnf'), EMPTY_CONFIG);
    const caFile = path.join(dir, 'ca.crt');
    await openssl(dir, [
      '-subj', '/CN=tessera-test-cluster-ca', '-keyout', path.join(dir, 'ca.key'), '-out', caFile,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
    const pki = new ClusterPki(dir, readFileSync(caFile, 'utf8'));
    const serviceAccount = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(pki.serviceAccountKeyFile, serviceAccount.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(pki.serviceAccountPublicKeyFile, serviceAccount.publicKey.export({ type: 'spki', format: 'pem' }));
    return pki;
  }

  /** A certificate signed by the cluster CA. */
  async issue(request: CertificateRequest): Promise<IssuedCertificate> {
    const certFile = path.join(this.dir, `${request.name}.crt`);
    const keyFile = path.join(this.dir, `${request.name}.key`);
    const subject = [...(request.organizations ?? []).map((o) => `/O=${o}`), `/CN=${request.commonName}`].join('');
    const alternativeNames = [...(request.ips ?? []).map((ip) => `IP:${ip}`), ...(request.dnsNames ?? []).map((name) => `DNS:${name}`)];
    const usage = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[request.usage];
    await openssl(this.dir, [
      '-subj', subject, '-keyout', keyFile, '-out', certFile, '-CA', this.caFile, '-CAkey', this.caKeyFile,
      '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment',
      '-addext', `extendedKeyUsage=${usage}`,
      ...(alternativeNames.length > 0 ? ['-addext', `subjectAltName=${alternativeNames.join(',')}`] : []),
    ]);
    return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
  }
}

/** A new P-256 key and an X.509 certificate for it: self-signed, or signed by `-CA`. */
async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run('openssl', [
    'req', '-config', path.join(dir, 'openssl.cnf'), '-x509', '-new', '-nodes', '-days', '7',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', ...args,
  ]);
}
