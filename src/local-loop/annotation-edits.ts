import type { AnnotationKind, AnnotationRequest, Category } from '../contract/index.ts'
import { quoteInput } from '../foundation/log.ts'
import type { ImageAnnotations } from './image-records.ts'
import { notFound, unprocessable } from './loop-errors.ts'

/**
 * What the web page does to an image's annotations: add or replace a box or point, delete any annotation by its
 * place in its list. Pure: the store applies the result in one transaction (LoopImages.updateAnnotations).
 */
const LISTS = { box: 'box_annotations', point: 'point_annotations', segmentation: 'segmentation_annotations' } as const

/** The project's category with this id; 422 naming the known ones otherwise. */
export function categoryFor(categories: readonly Category[], categoryId: string): Category {
  const category = categories.find((c) => c.id === categoryId)
  if (!category) throw unprocessable(`category ${quoteInput(categoryId)} is not a category of this project (${categories.map((c) => c.id).join(', ') || 'it has none'})`)
  return category
}

function annotationOf(request: AnnotationRequest, category: Category): Record<string, unknown> {
  const fields = { category_name: category.name, category_id: category.id }
  return request.kind === 'box'
    ? { ...fields, x: request.x, y: request.y, width: request.width, height: request.height }
    : { ...fields, x: request.x, y: request.y }
}

/** Adds the annotation (`index` undefined) or replaces the one at `index` of its kind. */
export function withAnnotation(annotations: ImageAnnotations, request: AnnotationRequest, category: Category, index?: number): ImageAnnotations {
  const key = LISTS[request.kind]
  const list = [...(annotations[key] as unknown[])]
  const annotation = annotationOf(request, category)
  if (index === undefined) list.push(annotation)
  else {
    if (index >= list.length) throw notFound(`the image has no ${request.kind} annotation number ${index} (it has ${list.length})`)
    list[index] = annotation
  }
  return { ...annotations, [key]: list }
}

export function withoutAnnotation(annotations: ImageAnnotations, kind: AnnotationKind, index: number): ImageAnnotations {
  const key = LISTS[kind]
  const list = annotations[key] as unknown[]
  if (index >= list.length) throw notFound(`the image has no ${kind} annotation number ${index} (it has ${list.length})`)
  return { ...annotations, [key]: list.filter((_, i) => i !== index) }
}
