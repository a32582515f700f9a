/** native-library.ts on Deno: Deno.dlopen and its unsafe pointers (`--allow-ffi`). */
import { denoApi, type DenoFfiType } from './deno-api.ts'
import type { CFunction, CSignature, CType, NativeCalls, NativePointer } from './native-types.ts'

// Deno has no C-string result type: a char* comes back as a pointer and is read here
const types: Record<CType, DenoFfiType> = { pointer: 'pointer', i32: 'i32', u64: 'u64', void: 'void', cstring: 'pointer' }

export function denoNativeCalls(): NativeCalls {
  const deno = denoApi()
  const definition = (signature: CSignature) => ({ parameters: signature.args.map((type) => types[type]), result: types[signature.returns] })
  const bind = (call: (...args: unknown[]) => unknown, signature: CSignature): CFunction => (...args) => {
    const value = call(...args)
    if (signature.returns === 'cstring') return value === null ? null : deno.UnsafePointerView.getCString(value as object)
    return value
  }
  return {
    open(path, signatures) {
      const definitions = Object.fromEntries(Object.entries<CSignature>(signatures).map(([name, signature]) => [name, definition(signature)]))
      const library = deno.dlopen(path, definitions)
      const symbols = Object.fromEntries(Object.entries<CSignature>(signatures).map(([name, signature]) => [name, bind(library.symbols[name]!, signature)]))
      return { symbols: symbols as Record<keyof typeof signatures & string, CFunction>, close: () => library.close() }
    },
    functionAt(address, signature) {
      const fn = new deno.UnsafeFnPointer(address as object, definition(signature))
      return bind((...args) => fn.call(...args), signature)
    },
    pointerTo: (view) => deno.UnsafePointer.of(view) as NativePointer,
  }
}
