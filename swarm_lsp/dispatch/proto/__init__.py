"""Generated protobuf/gRPC code for swarm.v1 (regenerate with scripts/gen_proto.py)."""
