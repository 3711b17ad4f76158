/**
 * The contents of the TLS and CA files named by the configuration, checked at start so that a
 * wrong file stops the start with one line naming its variable (contract §2). Left to
 * uWebSockets.js, garbage or a key of another certificate only said "App construction failed";
 * a CA file without a certificate was accepted and trusted nothing.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

/** Why the files are unusable, as `VARIABLE: what is wrong`; undefined when they are fine. */
export function tlsPairProblem(certFile: string, keyFile: string): string | undefined {
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  if (!holdsCertificate(cert)) return `KITE_TLS_CERT_FILE: holds no PEM certificate (${JSON.stringify(certFile)})`;
  try {
    createPrivateKey(key);
  } catch {
    return `KITE_TLS_KEY_FILE: holds no unencrypted PEM private key (${JSON.stringify(keyFile)})`;
  }
  try {
    createSecureContext({ cert, key });
  } catch {
    return `KITE_TLS_KEY_FILE: is not the key of the certificate in KITE_TLS_CERT_FILE`;
  }
  return undefined;
}

export function caFileProblem(caFile: string): string | undefined {
  return holdsCertificate(readFileSync(caFile)) ? undefined : `KITE_FEDERATION_CA_FILE: holds no PEM certificate (${JSON.stringify(caFile)})`;
}

function holdsCertificate(pem: Buffer): boolean {
  try {
    new X509Certificate(pem); // the first certificate of a chain or bundle
    return true;
  } catch {
    return false;
  }
}
