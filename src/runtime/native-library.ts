/**
 * Calling C from TypeScript on either runtime (bun:ffi or Deno's FFI, `--allow-ffi`): open a shared library
 * with the signatures of the symbols wanted, call a function found by address, hand a typed array to C as a
 * pointer. Only the few C types the callers need are mapped; pointers are opaque values of this module
 * (NULL is always `null`), `cstring` results come back as strings.
 */
import { RUNTIME } from './runtime-name.ts'
import { bunNativeCalls } from './bun-native-library.ts'
import { denoNativeCalls } from './deno-native-library.ts'
import type { CSignature, NativeCalls, NativePointer } from './native-types.ts'

export type { CFunction, CSignature, CType, NativeLibrary, NativePointer } from './native-types.ts'

let calls: NativeCalls | undefined
const native = (): NativeCalls => (calls ??= RUNTIME === 'deno' ? denoNativeCalls() : bunNativeCalls())

/** dlopens `path` (a name without a slash is searched the way the system loader searches it) and binds `signatures`. */
export function openNativeLibrary<Name extends string>(path: string, signatures: Record<Name, CSignature>) {
  return native().open(path, signatures)
}

/** The C function at `address`, callable with `signature`. */
export function functionAt(address: NonNullable<NativePointer>, signature: CSignature) {
  return native().functionAt(address, signature)
}

/** The address of a typed array's bytes, valid while the array is alive and not moved. */
export function pointerTo(view: ArrayBufferView) {
  return native().pointerTo(view)
}
