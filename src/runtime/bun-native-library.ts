/** native-library.ts on Bun: bun:ffi, loaded on first use (Deno cannot resolve a `bun:` module). */
import type { CFunction, CSignature, CType, NativeCalls, NativePointer } from './native-types.ts'

type BunFfi = typeof import('bun:ffi')

export function bunNativeCalls(): NativeCalls {
  const ffi = require('bun:ffi') as BunFfi
  const { FFIType } = ffi
  const types: Record<CType, number> = { pointer: FFIType.ptr, i32: FFIType.i32, u64: FFIType.u64, void: FFIType.void, cstring: FFIType.cstring }
  const definition = (signature: CSignature) => ({ args: signature.args.map((type) => types[type]), returns: types[signature.returns] })
  // bun:ffi gives NULL as null or 0, a char* as a CString object
  const result = (signature: CSignature, value: unknown): unknown => {
    if (signature.returns === 'cstring') return value === null || value === 0 ? null : String(value)
    if (signature.returns === 'pointer') return value === 0 ? null : value
    return value
  }
  const bind = (call: (...args: unknown[]) => unknown, signature: CSignature): CFunction => (...args) => result(signature, call(...args))
  return {
    open(path, signatures) {
      const definitions = Object.fromEntries(Object.entries<CSignature>(signatures).map(([name, signature]) => [name, definition(signature)]))
      const library = ffi.dlopen(path, definitions as Parameters<BunFfi['dlopen']>[1])
      const symbols = Object.fromEntries(Object.entries<CSignature>(signatures).map(([name, signature]) => [name, bind(library.symbols[name] as unknown as (...args: unknown[]) => unknown, signature)]))
      return { symbols: symbols as Record<keyof typeof signatures & string, CFunction>, close: () => library.close() }
    },
    functionAt(address, signature) {
      const call = ffi.CFunction({ ptr: address as unknown as import('bun:ffi').Pointer, ...definition(signature) } as Parameters<BunFfi['CFunction']>[0])
      return bind(call as unknown as (...args: unknown[]) => unknown, signature)
    },
    pointerTo: (view) => ffi.ptr(view as Uint8Array) as unknown as NativePointer,
  }
}
