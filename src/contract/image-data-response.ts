import { Type, type Static } from '@sinclair/typebox'
import { ImageData } from './training.ts'

/** `GET …/images?ids=a,b,c` (§4 #5). */
export const ImageDataResponse = Type.Object({ images: Type.Array(ImageData) }, { $id: 'ImageDataResponse' })
export type ImageDataResponse = Static<typeof ImageDataResponse>
