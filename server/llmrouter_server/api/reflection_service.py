"""Server reflection that serves the contract with its comments.

grpcio-reflection answers with files it re-serializes from descriptor pool
entries, and the pool (upb) keeps no source info: ``grpcurl describe`` showed
bare fields. ``descriptors.binpb``, next to this module, is the contract as
``buf build`` writes it, with source info and the imports it needs (``make
generate`` produces it); this servicer answers with those files byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import resources

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

# The asyncio servicer, which the package also exposes untyped as ``reflection.aio``.
from grpc_reflection.v1alpha._async import ReflectionServicer as _AsyncReflectionServicer

DESCRIPTORS = "descriptors.binpb"
"""The contract's FileDescriptorSet with source info, package data of this package."""


def contract_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The contract's files and the files they import, each after its imports."""
    data = resources.files(__package__).joinpath(DESCRIPTORS).read_bytes()
    return list(descriptor_pb2.FileDescriptorSet.FromString(data).file)


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serves reflection for ``service_names`` on ``server``, the contract with comments."""
    servicer = ReflectionServicer(service_names, contract_files())
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)


class ReflectionServicer(_AsyncReflectionServicer):  # type: ignore[misc]  # the package is untyped
    """``grpc.reflection.v1alpha`` answering with stored files, sent as they are.

    The files are the given ones, then those of the services they lack
    (health, reflection) and of the google.rpc status details, from the
    generated modules loaded in this process.
    The library's request loop and ``list_services`` are kept; its hooks for
    the three requests answered with files are overridden.
    """

    def __init__(
        self, service_names: Iterable[str], files: Iterable[descriptor_pb2.FileDescriptorProto]
    ) -> None:
        names = list(service_names)
        self._files = descriptor_pool.DescriptorPool()
        self._serialized: dict[str, bytes] = {}
        for file in files:
            self._add(file)
        for name in names:
            try:
                self._files.FindServiceByName(name)
            except KeyError:
                self._add_compiled(descriptor_pool.Default().FindFileContainingSymbol(name))
        # The status details every error carries (ErrorInfo, BadRequest, RetryInfo),
        # so grpcurl can decode them instead of printing base64.
        self._add_compiled(error_details_pb2.DESCRIPTOR)
        super().__init__(names, pool=self._files)

    def _add(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self._files.Add(file)
        self._serialized[file.name] = file.SerializeToString()

    def _add_compiled(self, file: descriptor.FileDescriptor) -> None:
        """Adds a generated module's file after the files it imports."""
        for dependency in file.dependencies:
            if dependency.name not in self._serialized:
                self._add_compiled(dependency)
        self._add(descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb))

    def _file_by_filename(
        self, request: reflection_pb2.ServerReflectionRequest, filename: str
    ) -> reflection_pb2.ServerReflectionResponse:
        return self._answer(request, lambda: self._files.FindFileByName(filename))

    def _file_containing_symbol(
        self, request: reflection_pb2.ServerReflectionRequest, symbol: str
    ) -> reflection_pb2.ServerReflectionResponse:
        return self._answer(request, lambda: self._find_symbol(symbol))

    def _file_containing_extension(
        self, request: reflection_pb2.ServerReflectionRequest, extendee: str, number: int
    ) -> reflection_pb2.ServerReflectionResponse:
        def find() -> descriptor.FileDescriptor:
            message = self._files.FindMessageTypeByName(extendee)
            extension = self._files.FindExtensionByNumber(message, number)
            return self._files.FindFileContainingSymbol(extension.full_name)

        return self._answer(request, find)

    def _find_symbol(self, symbol: str) -> descriptor.FileDescriptor:
        """The file defining ``symbol``, a method or a oneof among others.

        upb's pool finds neither methods nor oneofs by name (so ``grpcurl
        describe llmrouter.v1.RouterService.Generate`` failed): those are
        looked up in their service or message.
        """
        try:
            return self._files.FindFileContainingSymbol(symbol)
        except KeyError:
            parent, _, member = symbol.rpartition(".")
            try:
                service = self._files.FindServiceByName(parent)
            except KeyError:
                message = self._files.FindMessageTypeByName(parent)
                if member in message.oneofs_by_name:
                    return message.file
            else:
                if member in service.methods_by_name:
                    return service.file
            raise

    def _answer(
        self,
        request: reflection_pb2.ServerReflectionRequest,
        find: Callable[[], descriptor.FileDescriptor],
    ) -> reflection_pb2.ServerReflectionResponse:
        """The found file and every file it imports, directly or not; else NOT_FOUND."""
        try:
            found = find()
        except KeyError:
            return reflection_pb2.ServerReflectionResponse(
                error_response=reflection_pb2.ErrorResponse(
                    error_code=grpc.StatusCode.NOT_FOUND.value[0],
                    error_message=grpc.StatusCode.NOT_FOUND.value[1],
                ),
                original_request=request,
            )
        return reflection_pb2.ServerReflectionResponse(
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(
                file_descriptor_proto=[self._serialized[name] for name in _closure(found)]
            ),
            original_request=request,
        )


def _closure(file: descriptor.FileDescriptor) -> list[str]:
    """The names of ``file`` and of every file it imports, directly or not, each once."""
    names = [file.name]
    for dependency in file.dependencies:
        names += [name for name in _closure(dependency) if name not in names]
    return names
