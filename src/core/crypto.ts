import { createHash, createPrivateKey, hash, sign } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import sodium from 'sodium-native'
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

// DER prefix for a raw Ed25519 seed (RFC 8410), so node:crypto signs with our 32-byte keys.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const KEY_CACHE_MAX = 4096

/**
 * The Ed25519 check every peer runs, on records, blocks and in range sync's threads alike:
 * libsodium's `crypto_sign_verify_detached`. It is RFC 8032's equation with S below the group order,
 * and refuses a public key or an R of small order and non-canonical encodings. OpenSSL (node:crypto)
 * accepts those: with the identity point as the key, R the identity and S = 0, any message
 * "verifies", so anyone could sign for that key. It also takes 45 us a check where node:crypto took
 * 77-86 us, on a path that verifies thousands a second under a spam (docs/PERFORMANCE.md).
 */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.byteLength !== PUBLIC_KEY_BYTES || signature.byteLength !== SIGNATURE_BYTES) return false
  return sodium.crypto_sign_verify_detached(asBuffer(signature), asBuffer(message), asBuffer(publicKey))
}

const asBuffer = (x: Uint8Array): Buffer => (Buffer.isBuffer(x) ? x : Buffer.from(x.buffer, x.byteOffset, x.byteLength))

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
  const ok = ed25519Verify(publicKey, message, signature)
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
