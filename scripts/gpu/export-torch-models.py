# Exports torchvision networks (random weights; for latency and CPU-vs-GPU agreement only) on the GPU machine,
# so no weights need to travel. Usage: python3 export-torch-models.py OUT_DIR
import sys, torch, torchvision
out = sys.argv[1]
for name, ctor in [('resnet50_640', torchvision.models.resnet50), ('mobilenet_v3_large_640', torchvision.models.mobilenet_v3_large)]:
    torch.manual_seed(0)
    model = ctor().eval()
    try:
        torch.onnx.export(model, torch.rand(1, 3, 640, 640), f'{out}/{name}.onnx', input_names=['images'], output_names=['output0'], opset_version=17, dynamo=False)
        print('exported', name, flush=True)
    except Exception as error:
        print('export failed', name, repr(error)[:300], flush=True)
