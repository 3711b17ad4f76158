/**
 * The contents of the TLS and CA files named by the configuration, checked at start so that a
 * wrong file stops the start with one line naming its variable (contract §2). Left to
 * uWebSockets.js, garbage or a key of another certificate only said "App construction failed";
 * a CA file without a certificate was accepted and trusted nothing.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Why the files are unusable, as `VARIABLE: what is wrong`; undefined when they are fine. */
export function tlsPairProblem(certFile: string, keyFile: string): string | undefined {
  const certificate = firstCertificate(readFileSync(certFile));
  if (!certificate) return `KITE_TLS_CERT_FILE: holds no PEM certificate (${JSON.stringify(certFile)})`;
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(keyFile));
  } catch {
    return `KITE_TLS_KEY_FILE: holds no unencrypted PEM private key (${JSON.stringify(keyFile)})`;
  }
  // By the public key, whatever the key types: a TLS context takes an RSA key next to an EC
  // certificate without a word (it could hold a pair of each) and serves nothing with it.
  if (!certificate.checkPrivateKey(key)) return 'KITE_TLS_KEY_FILE: is not the key of the certificate in KITE_TLS_CERT_FILE';
  return undefined;
}

export function caFileProblem(caFile: string): string | undefined {
  return firstCertificate(readFileSync(caFile)) ? undefined : `KITE_FEDERATION_CA_FILE: holds no PEM certificate (${JSON.stringify(caFile)})`;
}

/** The first certificate of a PEM file (a chain or a bundle), if it holds one. */
function firstCertificate(pem: Buffer): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}
