"""A protoc plugin running grpcio-tools' gRPC Python generator.

grpcio-tools builds that generator into its own protoc instead of shipping a
``protoc-gen-grpc_python`` executable, so buf cannot call it directly. This
plugin reads the CodeGeneratorRequest buf sends, hands the same descriptors to
``grpc_tools.protoc --grpc_python_out`` and returns the files it wrote.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as tmp:
        descriptors = Path(tmp, "descriptors.binpb")
        descriptors.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = Path(tmp, "out")
        out.mkdir()
        with_services = {f.name for f in request.proto_file if f.service}
        targets = [name for name in request.file_to_generate if name in with_services]
        args = ["protoc", f"--descriptor_set_in={descriptors}", f"--grpc_python_out={out}"]
        args += targets
        if targets and protoc.main(args) != 0:
            response.error = "grpc_tools.protoc failed: " + " ".join(args)
        for path in sorted(out.rglob("*.py")):
            response.file.add(name=str(path.relative_to(out)), content=path.read_text())
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
