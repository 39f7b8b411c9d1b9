// A throwaway certificate authority and a listener certificate for tls://
// tests, made with the openssl command line once per test process (in a
// temporary directory removed at once: only the PEM text is kept).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TlsMaterial {
  /** The CA that signed `cert` (what a connector trusts). */
  ca: string;
  /** The listener's key and certificate, for localhost and 127.0.0.1 (and `names`). */
  key: string;
  cert: string;
  /** A second CA and a certificate it signed, which the first CA's trusters refuse. */
  otherCa: string;
}

let made: TlsMaterial | null | undefined;
export let noOpenssl = '';

function ca(dir: string, name: string): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`), '-days', '2', '-subj', `/CN=ipckit test ${name}`], { stdio: 'pipe' });
}

/** The material, or null when openssl cannot make it here (`noOpenssl` says why). */
export function tlsMaterial(): TlsMaterial | null {
  if (made !== undefined) return made;
  const dir = mkdtempSync(join(tmpdir(), 'ipckit-tls-'));
  try {
    ca(dir, 'ca');
    ca(dir, 'other');
    execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'req.csr'), '-subj', '/CN=localhost'], { stdio: 'pipe' });
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:10.199.0.1,IP:10.199.0.2\n');
    execFileSync('openssl', ['x509', '-req', '-in', join(dir, 'req.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'cert.pem'), '-days', '2', '-extfile', join(dir, 'ext.cnf')], { stdio: 'pipe' });
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    made = { ca: read('ca.pem'), key: read('key.pem'), cert: read('cert.pem'), otherCa: read('other.pem') };
  } catch (e) {
    noOpenssl = `openssl could not make a test certificate here (${(e as Error).message.split('\n')[0]}); install the openssl package`;
    made = null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return made;
}
