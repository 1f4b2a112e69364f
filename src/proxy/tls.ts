// TLS for the proxy: --tls-cert, --tls-key and --tls-client-ca read and checked before anything starts, re-read on SIGHUP.
import {X509Certificate, createPrivateKey} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {createSecureContext, type SecureContextOptions} from 'node:tls'

import type {FrontDoorOptions} from '../config.js'
import {MlserveError, messageOf} from '../errors.js'

/** The files behind the secure context: what SIGHUP reads again. */
export interface TlsFiles {
  readonly cert: string
  readonly key: string
  readonly clientCa?: string
}

/** The TLS files of the options, or undefined (plain HTTP); one of --tls-cert and --tls-key without the other is an error. */
export function tlsFilesOf(options: FrontDoorOptions): TlsFiles | undefined {
  const {tlsCert: cert, tlsKey: key, tlsClientCa: clientCa} = options
  if (!cert && !key) {
    if (clientCa) throw tlsError('--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for over TLS only.')
    return undefined
  }

  if (!cert || !key) throw tlsError(`--${cert ? 'tls-key' : 'tls-cert'} is missing: --tls-cert and --tls-key go together.`)
  return {cert, key, clientCa}
}

const tlsError = (message: string, cause?: unknown) =>
  new MlserveError('TLS_INVALID', message, {
    cause,
    suggestions: [
      'Pass a PEM certificate (chain) with --tls-cert and its PEM private key with --tls-key; check them with `openssl x509 -in CERT -noout -text`.',
    ],
  })

async function readPem(file: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (error) {
    throw tlsError(`${flag} ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}.`, error)
  }
}

/**
 * The server's secure context options from the files, each parsed and the key matched to the
 * certificate, so a bad file fails here with its name rather than at the first handshake.
 */
export async function readTls(files: TlsFiles): Promise<SecureContextOptions> {
  const [cert, key, ca] = await Promise.all([
    readPem(files.cert, '--tls-cert'),
    readPem(files.key, '--tls-key'),
    files.clientCa ? readPem(files.clientCa, '--tls-client-ca') : undefined,
  ])
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(cert)
  } catch (error) {
    throw tlsError(`--tls-cert ${files.cert} is not a PEM certificate: ${messageOf(error)}.`, error)
  }

  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key))) throw new Error('the key is not the certificate’s')
  } catch (error) {
    throw tlsError(`--tls-key ${files.key} is not the private key of --tls-cert ${files.cert}: ${messageOf(error)}.`, error)
  }

  if (ca) {
    try {
      void new X509Certificate(ca)
    } catch (error) {
      throw tlsError(`--tls-client-ca ${files.clientCa} is not a PEM certificate: ${messageOf(error)}.`, error)
    }
  }

  const options: SecureContextOptions = {cert, key, ...(ca ? {ca} : {})}
  try {
    createSecureContext(options)
  } catch (error) {
    throw tlsError(`The TLS files cannot be used together: ${messageOf(error)}.`, error)
  }

  return options
}
