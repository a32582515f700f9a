import { Type, type TSchema, type TOptional, type TUnion, type TNull, type TLiteral } from '@sinclair/typebox'

/** A Python `Optional[T] = None` field: the key may be missing, and decoding fills it with null. */
export function Nullable<T extends TSchema>(schema: T): TOptional<TUnion<[T, TNull]>> {
  return Type.Optional(Type.Union([schema, Type.Null()], { default: null }))
}

/** A field that is always present and may be null (our own answers; a Python Optional is `Nullable`). */
export function OrNull<T extends TSchema>(schema: T): TUnion<[T, TNull]> {
  return Type.Union([schema, Type.Null()])
}

type LiteralUnion<T extends readonly string[]> = TUnion<{ [K in keyof T]: TLiteral<T[K] & string> } & TSchema[]>

/** A string enum as a union of literals: validated by TypeBox, listed in OpenAPI, typed as the union. */
export function StringEnum<const T extends readonly string[]>(values: T): LiteralUnion<T> {
  return Type.Union(values.map((v) => Type.Literal(v))) as unknown as LiteralUnion<T>
}
