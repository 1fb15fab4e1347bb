import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { StoreError } from './errors.js'

export const KEY_FILE = 'peer.key'

/**
 * The peer's Ed25519 identity, kept in `<dir>/peer.key` (libp2p protobuf, mode 0600) so the PeerId
 * (and the validator address) survives restarts. Created on first start.
 */
export async function loadOrCreateIdentity(dir: string): Promise<PrivateKey> {
  const path = join(dir, KEY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') throw new StoreError('IO', path, `cannot read key file ${path}: ${code ?? String(err)}`)
  }
  if (bytes !== undefined) {
    let key: PrivateKey
    try {
      key = privateKeyFromProtobuf(bytes)
    } catch {
      throw new StoreError(
        'CORRUPT',
        path,
        `key file ${path} is not a libp2p private key: move it away to get a new identity`,
      )
    }
    if (key.type !== 'Ed25519')
      throw new StoreError('CORRUPT', path, `key file ${path} holds a ${key.type} key; pos-peer needs Ed25519`)
    return key
  }
  const key = await generateKeyPair('Ed25519')
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const tmp = `${path}.tmp-${process.pid}`
    await writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600 })
    await rename(tmp, path)
  } catch (err) {
    throw new StoreError(
      'IO',
      path,
      `cannot write key file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    )
  }
  return key
}
