"""Generated from proto/nextbest/v1 by scripts/gen_protos.py: do not edit."""
