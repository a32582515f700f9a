/** The shapes shared by native-library.ts and its two runtimes' implementations. */

/** `pointer` (void*), `i32`, `u64`, `void` (results only), `cstring` (a char* result, read as a string) */
export type CType = 'pointer' | 'i32' | 'u64' | 'void' | 'cstring'

export interface CSignature {
  args: readonly CType[]
  returns: CType
}

/** An address from this module: opaque (a number on Bun, an object on Deno); NULL is `null`. */
export type NativePointer = { readonly __nativePointer: unique symbol } | null

export type CFunction = (...args: unknown[]) => unknown

export interface NativeLibrary<Name extends string> {
  readonly symbols: Record<Name, CFunction>
  close(): void
}

export interface NativeCalls {
  open<Name extends string>(path: string, signatures: Record<Name, CSignature>): NativeLibrary<Name>
  functionAt(address: NonNullable<NativePointer>, signature: CSignature): CFunction
  pointerTo(view: ArrayBufferView): NativePointer
}
