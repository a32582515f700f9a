/** Model conversion: the converter node, the ConverterLogic interface, the ledger and the built-in YOLO ONNX → ONNX package conversion. */
export { ConverterNode, selectModelsToConvert, DEFAULT_CONVERSION_INTERVAL_MS, DEFAULT_MAX_CONVERSIONS_PER_CYCLE, type ConverterNodeOptions, type ConverterCycleReport } from './converter-node.ts'
export { ModelNotConvertibleError, type ConverterLogic } from './converter-logic.ts'
export { ConversionLedger, decideConversion, recordFailure, recordSuccess, ledgerKey, DEFAULT_RETRY_POLICY, type RetryPolicy, type ConversionDecision } from './conversion-ledger.ts'
export { YoloOnnxConverter, categoriesForClassNames, YOLO_ONNX_FORMAT, ONNX_PACKAGE_FORMAT } from './yolo-onnx-converter.ts'
