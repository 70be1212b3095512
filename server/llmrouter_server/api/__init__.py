"""The gRPC layer: decodes messages, calls the domain, encodes events, maps errors."""
