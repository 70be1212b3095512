/**
 * The google.rpc error details the server attaches to a failed call:
 * ErrorInfo, BadRequest and RetryInfo.
 *
 * protobuf-es ships only the google.protobuf well-known types, so these three
 * messages are declared here from their public wire format
 * (google/rpc/error_details.proto) and turned into descriptors when this
 * module loads; ConnectError.findDetails() decodes them with those.
 */
import { create, createFileRegistry, type Message } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import {
  type Duration,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_duration,
} from "@bufbuild/protobuf/wkt";

/** Why a call failed: a stable reason, its domain and facts such as the field at fault. */
export type ErrorInfo = Message<"google.rpc.ErrorInfo"> & {
  reason: string;
  domain: string;
  metadata: { [key: string]: string };
};

/** One invalid request field. */
export type FieldViolation = Message<"google.rpc.BadRequest.FieldViolation"> & {
  field: string;
  description: string;
  reason: string;
};

/** The invalid fields of a request. */
export type BadRequest = Message<"google.rpc.BadRequest"> & {
  fieldViolations: FieldViolation[];
};

/** How long to wait before retrying. */
export type RetryInfo = Message<"google.rpc.RetryInfo"> & {
  retryDelay?: Duration;
};

// jsonName as protoc fills it in: the proto3 JSON name, read when the
// WebSocket gateway sends the details as JSON.
const field = (name: string, number: number, type: Type, typeName?: string) => ({
  name,
  jsonName: name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase()),
  number,
  type,
  typeName,
  label: Label.OPTIONAL,
});

const repeated = (name: string, number: number, typeName: string) => ({
  ...field(name, number, Type.MESSAGE, typeName),
  label: Label.REPEATED,
});

const errorDetails = create(FileDescriptorProtoSchema, {
  name: "google/rpc/error_details.proto",
  package: "google.rpc",
  dependency: ["google/protobuf/duration.proto"],
  syntax: "proto3",
  messageType: [
    {
      name: "ErrorInfo",
      field: [
        field("reason", 1, Type.STRING),
        field("domain", 2, Type.STRING),
        repeated("metadata", 3, ".google.rpc.ErrorInfo.MetadataEntry"),
      ],
      nestedType: [
        {
          name: "MetadataEntry",
          field: [field("key", 1, Type.STRING), field("value", 2, Type.STRING)],
          options: { mapEntry: true },
        },
      ],
    },
    {
      name: "BadRequest",
      field: [repeated("field_violations", 1, ".google.rpc.BadRequest.FieldViolation")],
      nestedType: [
        {
          name: "FieldViolation",
          field: [
            field("field", 1, Type.STRING),
            field("description", 2, Type.STRING),
            field("reason", 3, Type.STRING),
          ],
        },
      ],
    },
    {
      name: "RetryInfo",
      field: [field("retry_delay", 1, Type.MESSAGE, ".google.protobuf.Duration")],
    },
  ],
});

/** The google.rpc detail messages, for reading them from JSON as well. */
export const registry = createFileRegistry(errorDetails, (name) =>
  name === file_google_protobuf_duration.proto.name ? file_google_protobuf_duration : undefined,
);

function message<T extends Message>(typeName: string): GenMessage<T> {
  const desc = registry.getMessage(typeName);
  if (desc === undefined) {
    throw new Error(`${typeName} is missing from the error details registry`);
  }
  return desc as GenMessage<T>;
}

/** The descriptor of google.rpc.ErrorInfo. */
export const ErrorInfoSchema = message<ErrorInfo>("google.rpc.ErrorInfo");
/** The descriptor of google.rpc.BadRequest. */
export const BadRequestSchema = message<BadRequest>("google.rpc.BadRequest");
/** The descriptor of google.rpc.RetryInfo. */
export const RetryInfoSchema = message<RetryInfo>("google.rpc.RetryInfo");
