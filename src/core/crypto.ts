import { createHash, createPrivateKey, createPublicKey, hash, type KeyObject, sign, verify } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { toHex } from './bytes.js'

export const HASH_BYTES = 32
export const PUBLIC_KEY_BYTES = 32
export const SIGNATURE_BYTES = 64

/** One-shot sha256 returning node's Buffer (no copy), for hot paths. */
export function sha256Buffer(data: Uint8Array): Buffer {
  return hash('sha256', data, 'buffer') as unknown as Buffer
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return new Uint8Array(hash('sha256', parts[0], 'buffer'))
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

// DER prefixes for raw Ed25519 keys (RFC 8410), so node:crypto can use 32-byte raw keys directly.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

// Public keys of validators repeat in every record they sign; parsing a key costs more than the
// signature check, so keep a bounded cache. A key is cached from its second use: a flood of fresh
// keys, each signing once, would otherwise churn the cache and leave thousands of native key
// objects waiting for the garbage collector (a 60,000-key stake flood: docs/PERFORMANCE.md); a
// key seen once is parsed for its one check and freed at once.
const KEY_CACHE_MAX = 4096
const keyCache = new Map<string, KeyObject>()
const seenOnce = new Set<string>()

type PublicKeyInput = KeyObject | { key: Buffer; format: 'der'; type: 'spki' }

function publicKeyInput(raw: Uint8Array): PublicKeyInput {
  const id = toHex(raw)
  const cached = keyCache.get(id)
  if (cached !== undefined) return cached
  const der = { key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' } as const
  if (!seenOnce.delete(id)) {
    if (seenOnce.size >= KEY_CACHE_MAX * 4) seenOnce.delete(seenOnce.values().next().value as string)
    seenOnce.add(id)
    return der
  }
  const key = createPublicKey(der)
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string)
  keyCache.set(id, key)
  return key
}

/** A signing key held by this peer: the 32-byte Ed25519 seed and its public key. */
export interface Signer {
  readonly publicKey: Uint8Array
  sign(message: Uint8Array): Uint8Array
}

export function signerFromSeed(seed: Uint8Array, publicKey: Uint8Array): Signer {
  if (seed.byteLength !== 32 || publicKey.byteLength !== PUBLIC_KEY_BYTES) {
    throw new TypeError('an Ed25519 signer needs a 32-byte seed and a 32-byte public key')
  }
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  return {
    publicKey,
    sign: (message) => new Uint8Array(sign(null, message, key)),
  }
}

/**
 * Signatures already found valid, keyed by sha256(publicKey || signature || message): a reading is
 * checked on the readings topic and then again in every candidate that carries it. Only valid
 * ones are kept, and the key covers all three inputs, so a cached answer is the answer verify
 * would give. Bounded; the oldest entry goes first.
 */
const verified = new Set<string>()
const VERIFIED_MAX = 20_000

const verifiedKey = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) =>
  sha256Buffer(Buffer.concat([publicKey, signature, message])).toString('base64')

function remember(key: string): void {
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.values().next().value as string)
  verified.add(key)
}

/**
 * Record a signature that was verified elsewhere (the sync path verifies batches on worker
 * threads with the same Ed25519 check); later verifySignature calls find it.
 */
export function rememberVerified(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): void {
  remember(verifiedKey(publicKey, message, signature))
}

/** True when this exact signature was already found valid (a cache lookup only, no check). */
export function knownValid(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return verified.has(verifiedKey(publicKey, message, signature))
}

export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.byteLength !== PUBLIC_KEY_BYTES || signature.byteLength !== SIGNATURE_BYTES) return false
  const key = verifiedKey(publicKey, message, signature)
  if (verified.has(key)) return true
  let ok: boolean
  try {
    ok = verify(null, message, publicKeyInput(publicKey), signature)
  } catch {
    // not a valid curve point
    return false
  }
  if (ok) remember(key)
  return ok
}

const addressCache = new Map<string, string>()

/** A validator's address is the libp2p PeerId string of its Ed25519 public key. */
export function addressOf(publicKey: Uint8Array): string {
  const id = toHex(publicKey)
  let address = addressCache.get(id)
  if (address === undefined) {
    address = peerIdFromPublicKey(publicKeyFromRaw(publicKey) as never).toString()
    if (addressCache.size >= KEY_CACHE_MAX) addressCache.delete(addressCache.keys().next().value as string)
    addressCache.set(id, address)
  }
  return address
}

/** An address that is not the peer id of an Ed25519 key. */
export class AddressError extends Error {
  override name = 'AddressError'
}

/** The Ed25519 public key of an address (a peer id string such as 12D3KooW...). */
export function publicKeyOfAddress(address: string): Uint8Array {
  let raw: Uint8Array | undefined
  try {
    const id = peerIdFromString(address.trim())
    raw = id.type === 'Ed25519' ? id.publicKey.raw : undefined
  } catch {
    raw = undefined
  }
  if (raw === undefined || raw.byteLength !== PUBLIC_KEY_BYTES) {
    throw new AddressError(
      `"${address.slice(0, 60)}" is not a pos-peer address (the peer id of an Ed25519 key, 12D3KooW...)`,
    )
  }
  return raw
}

/** The signer for a libp2p Ed25519 private key (its raw form is seed || public key). */
export function signerFromLibp2pKey(key: { type: string; raw: Uint8Array }): Signer {
  if (key.type !== 'Ed25519' || key.raw.byteLength !== 64) throw new TypeError('pos-peer identities are Ed25519 keys')
  return signerFromSeed(key.raw.subarray(0, 32), key.raw.subarray(32))
}
