import { toHex } from './bytes.js'
import { addressOf, publicKeyOfAddress } from './crypto.js'
import { type ChainConfig, DEFAULT_PARAMS, makeChainConfig, type NetworkParams } from './params.js'

/**
 * A genesis file (docs/PROTOCOL.md section 6): the network's name, genesis time, every parameter
 * and the allocations (address -> tokens). The network id is the hash of all of it, so peers with
 * different files never mix. JSON, written by `pos-peer genesis`, read with `--genesis FILE`.
 */
export interface GenesisDoc {
  readonly network: string
  /** ISO 8601 (UTC) of slot 0. */
  readonly genesisTime: string
  readonly params: Omit<NetworkParams, 'name' | 'genesisTime'>
  /** Address (peer id, 12D3KooW...) -> free tokens at genesis. */
  readonly allocations: Readonly<Record<string, number>>
}

/** A genesis file that cannot be used, with what is wrong in words for its user. */
export class GenesisError extends Error {
  override name = 'GenesisError'
}

const PARAM_KEYS = Object.keys(DEFAULT_PARAMS).filter((k) => k !== 'name' && k !== 'genesisTime') as (keyof Omit<
  NetworkParams,
  'name' | 'genesisTime'
>)[]

/** The document for a network (what `pos-peer genesis` writes). */
export function genesisDoc(net: ChainConfig): GenesisDoc {
  const { name, genesisTime, ...params } = net.params
  const allocations: Record<string, number> = {}
  for (const [key, tokens] of net.allocations) allocations[addressOf(Buffer.from(key, 'hex'))] = tokens
  return { network: name, genesisTime: new Date(genesisTime).toISOString(), params, allocations }
}

/**
 * The network of a genesis document (parsed JSON from anyone): every field checked, unknown fields
 * refused (a typo must not silently make another network), missing parameters take their
 * defaults (the id hashes the values used). Throws GenesisError.
 */
export function configFromGenesis(raw: unknown): ChainConfig {
  const obj = asObject(raw, 'the genesis file')
  for (const k of Object.keys(obj)) {
    if (!['network', 'genesisTime', 'params', 'allocations'].includes(k)) throw new GenesisError(`unknown field "${k}"`)
  }
  if (typeof obj.network !== 'string') throw new GenesisError('"network" must be a name (a-z, 0-9, "-")')
  const time = typeof obj.genesisTime === 'string' ? Date.parse(obj.genesisTime) : Number.NaN
  if (!Number.isSafeInteger(time) || time < 0) {
    throw new GenesisError('"genesisTime" must be an ISO 8601 time such as "2026-12-01T12:00:00.000Z"')
  }
  const params: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(obj.params === undefined ? {} : asObject(obj.params, '"params"'))) {
    if (!(PARAM_KEYS as string[]).includes(k)) throw new GenesisError(`unknown parameter "params.${k}"`)
    params[k] = v
  }
  const allocations = new Map<string, number>()
  for (const [address, tokens] of Object.entries(asObject(obj.allocations, '"allocations"'))) {
    let key: string
    try {
      key = toHex(publicKeyOfAddress(address))
    } catch (err) {
      throw new GenesisError(`allocation ${(err as Error).message}`)
    }
    if (typeof tokens !== 'number') throw new GenesisError(`allocation of ${address} must be a number of tokens`)
    allocations.set(key, tokens)
  }
  if (allocations.size === 0) throw new GenesisError('"allocations" must give tokens to at least one address')
  try {
    return makeChainConfig({ ...(params as Partial<NetworkParams>), name: obj.network, genesisTime: time }, allocations)
  } catch (err) {
    throw new GenesisError((err as Error).message)
  }
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new GenesisError(`${what} must be a JSON object`)
  return v as Record<string, unknown>
}

/** `<address>=<tokens>` as given to `pos-peer genesis --account`. */
export function parseAccountArg(arg: string): [Uint8Array, number] {
  const m = /^([^=\s]+)=(\d{1,16})$/.exec(arg.trim())
  if (m === null) throw new GenesisError(`--account ${arg}: expected <peer id>=<tokens>, e.g. 12D3KooW...=1000`)
  let key: Uint8Array
  try {
    key = publicKeyOfAddress(m[1])
  } catch (err) {
    throw new GenesisError(`--account ${(err as Error).message}`)
  }
  return [key, Number(m[2])]
}
