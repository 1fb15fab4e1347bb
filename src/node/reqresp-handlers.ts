import { toHex } from '../core/bytes.js'
import type { ReqRespHandlers } from '../network/reqresp.js'
import type { StatusSync } from '../sync/status.js'
import type { ChainService } from './chain-service.js'

/**
 * What this peer serves, one handler per protocol. A new protocol: add it to network/topics.ts
 * and network/reqresp.ts (its request codec), and the compiler asks for its handler here.
 */
export function reqrespHandlers(svc: ChainService, status: StatusSync): ReqRespHandlers {
  return {
    status: (peer, theirs) => {
      status.onStatus(peer, theirs)
      return status.localStatus()
    },
    'blocks-by-range': (_peer, { from, count }) => svc.canonicalBlocks(from, count),
    'blocks-by-hash': async (_peer, hashes) => {
      const out: Uint8Array[] = []
      for (const h of hashes) {
        const b = await svc.blockByHash(toHex(h))
        if (b !== undefined) out.push(b.bytes)
      }
      return out
    },
  }
}
