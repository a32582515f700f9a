// Files embedded with `import p from '...' with { type: 'file' }` resolve to a path string.
declare module '*.onnx' { const path: string; export default path }
declare module '*.wasm' { const path: string; export default path }
declare module '*.so.1' { const path: string; export default path }
declare module '*.zip' { const path: string; export default path }
declare module '*.html' { const path: string; export default path }
