import { describe, expect, test } from 'bun:test'
import jpeg from 'jpeg-js'
import { checkUploadItem, fileNameProblem, pairUploadParts } from '../../src/local-loop/image-upload.ts'
import { decodePartFileName } from '../../src/local-loop/http-body.ts'
import { inspectJpeg } from '../../src/local-loop/jpeg-inspection.ts'
import { jpegClaimingSize } from '../support/image-bombs.ts'
import { makeJpeg } from './loop-test-peer.ts'

const text = (s: string) => new TextEncoder().encode(s)

describe('pairUploadParts', () => {
  test('pairs json and jpg by their image_<stem> file names, in order of appearance', () => {
    const outcome = pairUploadParts([
      { fileName: 'image_2025-03-05_14:22:01.123456.json', bytes: text('{}') },
      { fileName: 'image_b.jpg', bytes: new Uint8Array([1]) },
      { fileName: 'image_2025-03-05_14:22:01.123456.jpg', bytes: new Uint8Array([2]) },
      { fileName: 'image_b.json', bytes: text('{"tags":[]}') },
    ])
    expect(outcome.problems).toEqual([])
    expect(outcome.items.map((i) => i.stem)).toEqual(['2025-03-05_14:22:01.123456', 'b'])
    expect(outcome.items.map((i) => i.jpegFileName)).toEqual(['image_2025-03-05_14:22:01.123456.jpg', 'image_b.jpg'])
    expect(outcome.items[1]!.jpeg).toEqual(new Uint8Array([1]))
  })

  test('names unpaired, unknown and duplicated files', () => {
    const outcome = pairUploadParts([
      { fileName: 'image_a.json', bytes: text('{}') },
      { fileName: 'image_b.jpg', bytes: new Uint8Array([1]) },
      { fileName: 'notes.txt', bytes: text('x') },
      { fileName: 'image_c.json', bytes: text('{}') },
      { fileName: 'image_c.json', bytes: text('{}') },
      { fileName: 'image_c.jpeg', bytes: new Uint8Array([1]) },
    ])
    expect(outcome.items.map((i) => i.stem)).toEqual(['c'])
    expect(outcome.problems).toEqual([
      'file "notes.txt" is neither image_<stem>.json nor image_<stem>.jpg',
      'file "image_c.json" appears twice for image "c"',
      'image_a.json has no matching image_a.jpg',
      'image_b.jpg has no matching image_b.json',
    ])
  })

  test('a file name is only metadata: any characters but control characters, at most 255', () => {
    for (const name of ['image_a/b.jpg', 'image_%.jpg', 'image_..jpg', 'image_2025-03-05_14:22:01.123456.jpg', 'image_猫.jpg']) expect(fileNameProblem(name)).toBeUndefined()
    expect(fileNameProblem('image_a\nb.jpg')).toContain('control character')
    expect(fileNameProblem(`image_${'x'.repeat(300)}.jpg`)).toContain('longer than 255')
    expect(pairUploadParts([{ fileName: 'image_\u0000.json', bytes: text('{}') }]).problems[0]).toContain('control character')
  })

  test('multipart file names are percent-decoded as RFC 7578 allows (the Python outbox sends %3A for colons)', () => {
    expect(decodePartFileName('image_2026-12-04_17%3A04%3A58.477070.jpg')).toBe('image_2026-12-04_17:04:58.477070.jpg')
    expect(decodePartFileName('image_%E7%8C%AB.json')).toBe('image_猫.json')
    // not valid percent-encoding: kept as sent
    expect(decodePartFileName('image_100%.jpg')).toBe('image_100%.jpg')
    expect(decodePartFileName('image_%E7%8C.jpg')).toBe('image_%E7%8C.jpg')
  })
})

describe('checkUploadItem', () => {
  test('decodes metadata with defaults and reads the JPEG size', () => {
    const item = checkUploadItem({ stem: 'a', jpegFileName: 'image_a.jpg', metadataBytes: text('{"tags":["t"],"state":"trash","creation_date":"2025-01-01"}'), jpeg: makeJpeg(40, 30) })
    expect(item).toMatchObject({ stem: 'a', jpegFileName: 'image_a.jpg', width: 40, height: 30 })
    expect(item.metadata).toMatchObject({ tags: ['t'], state: 'trash', creation_date: '2025-01-01', box_detections: [] })
  })

  test('names the file and the field of a broken item', () => {
    expect(() => checkUploadItem({ stem: 'a', jpegFileName: 'image_a.jpg', metadataBytes: text('{oops'), jpeg: makeJpeg() })).toThrow('image_a.json: (root): malformed JSON')
    expect(() => checkUploadItem({ stem: 'a', jpegFileName: 'image_a.jpg', metadataBytes: text('{"tags":"x"}'), jpeg: makeJpeg() })).toThrow('image_a.json: /tags:')
    expect(() => checkUploadItem({ stem: 'a', jpegFileName: 'image_a.jpg', metadataBytes: text('{"state":"lost"}'), jpeg: makeJpeg() })).toThrow('image_a.json: /state:')
    expect(() => checkUploadItem({ stem: 'a', jpegFileName: 'image_a.jpg', metadataBytes: text('{}'), jpeg: text('not a jpeg') })).toThrow('image_a.jpg: not a JPEG')
  })
})

function noisyJpeg(width: number, height: number): Uint8Array {
  const pixels = new Uint8Array(width * height * 4)
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24
  return new Uint8Array(jpeg.encode({ width, height, data: pixels }, 90).data)
}

describe('inspectJpeg', () => {
  const good = noisyJpeg(160, 120)

  test('accepts a complete JPEG', () => {
    expect(inspectJpeg(good)).toEqual({ width: 160, height: 120 })
  })

  test('refuses truncated and garbled JPEGs', () => {
    expect(() => inspectJpeg(good.subarray(0, Math.floor(good.length / 2)))).toThrow('truncated')
    expect(() => inspectJpeg(good.subarray(0, 100))).toThrow('does not decode')
    const garbled = good.slice()
    garbled.fill(0x12, 2, 200)
    expect(() => inspectJpeg(garbled)).toThrow('does not decode')
    expect(() => inspectJpeg(new Uint8Array())).toThrow('not a JPEG')
  })

  test('refuses a small file whose header claims a huge image, naming the size', () => {
    expect(() => inspectJpeg(jpegClaimingSize(9999, 9999))).toThrow('9999×9999 pixels')
  })
})
