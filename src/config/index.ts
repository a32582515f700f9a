export * from './settings.ts'
export * from './read-settings.ts'
export * from './loop-url.ts'
export * from './node-config.ts'
