"""Build time: ONNX export of the trained models with their parity and int8 gates (needs torch).

Apart from serving/, which runs the exported files on onnxruntime and numpy alone.
"""
