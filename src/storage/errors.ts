export type StoreErrorCode = 'LOCKED' | 'CORRUPT' | 'IO' | 'WRONG_NETWORK'

/** A data dir problem, with the path and what the user can do about it. */
export class StoreError extends Error {
  override name = 'StoreError'
  constructor(
    readonly code: StoreErrorCode,
    readonly path: string,
    message: string,
  ) {
    super(message)
  }
}
