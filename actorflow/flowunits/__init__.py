"""Built-in flowunits, one small module per unit family.

``BUILTINS`` maps registry names to ``"module:Class"``; the registry imports a module
only when a graph names one of its units, so ``import actorflow`` stays light.
"""

from __future__ import annotations

BUILTINS: dict[str, str] = {
    "onnx_inference": "actorflow.flowunits.inference.onnx:OnnxInference",
    "image_decode": "actorflow.flowunits.image.decode:ImageDecode",
    "resize": "actorflow.flowunits.image.transform:Resize",
    "letterbox": "actorflow.flowunits.image.transform:Letterbox",
    "normalize": "actorflow.flowunits.image.transform:Normalize",
    "color_convert": "actorflow.flowunits.image.transform:ColorConvert",
    "to_tensor": "actorflow.flowunits.image.transform:ToTensor",
    "crop": "actorflow.flowunits.image.transform:Crop",
    "nms": "actorflow.flowunits.detection.units:Nms",
    "box_visualization": "actorflow.flowunits.detection.units:BoxVisualization",
    "label_visualization": "actorflow.flowunits.detection.units:LabelVisualization",
    "video_source": "actorflow.flowunits.video.sources:VideoSource",
    "image_dir_source": "actorflow.flowunits.video.sources:ImageDirSource",
    "video_writer_sink": "actorflow.flowunits.video.sinks:VideoWriterSink",
    "image_dir_sink": "actorflow.flowunits.video.sinks:ImageDirSink",
    "json_lines_sink": "actorflow.flowunits.video.sinks:JsonLinesSink",
    "mtcnn_pyramid": "actorflow.flowunits.mtcnn.units:MtcnnPyramid",
    "mtcnn_pnet_boxes": "actorflow.flowunits.mtcnn.units:MtcnnPnetBoxes",
    "mtcnn_crop": "actorflow.flowunits.mtcnn.units:MtcnnCrop",
    "mtcnn_refine": "actorflow.flowunits.mtcnn.units:MtcnnRefine",
    "mtcnn_finish": "actorflow.flowunits.mtcnn.units:MtcnnFinish",
    "http_sink": "actorflow.flowunits.sinks.http:HttpSink",
    "websocket_sink": "actorflow.flowunits.sinks.websocket:WebSocketSink",
    "dashboard": "actorflow.flowunits.dashboard.sink:DashboardSink",
    "wrapper": "actorflow.wrapper._unit:WrapperUnit",
}
