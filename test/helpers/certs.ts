// Certificates for TLS tests, made with openssl in a temporary directory: a CA, server and client certificates.
import {execFileSync} from 'node:child_process'
import path from 'node:path'

export interface KeyPair {
  readonly cert: string
  readonly key: string
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

const openssl = (args: readonly string[], cwd: string) => execFileSync('openssl', args, {cwd, stdio: 'pipe'})

/** A self-signed certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1), or a CA when `ca`. */
export function selfSigned(dir: string, name: string, ca = false): KeyPair {
  const cert = path.join(dir, `${name}.pem`)
  const key = path.join(dir, `${name}.key`)
  const extension = ca ? 'basicConstraints=critical,CA:TRUE' : 'subjectAltName=IP:127.0.0.1'
  openssl(['req', '-x509', ...EC, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', extension], dir)
  return {cert, key}
}

/** A client certificate signed by `ca`. */
export function signedBy(dir: string, name: string, ca: KeyPair): KeyPair {
  const cert = path.join(dir, `${name}.pem`)
  const key = path.join(dir, `${name}.key`)
  const csr = path.join(dir, `${name}.csr`)
  openssl(['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], dir)
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2'], dir)
  return {cert, key}
}
