#!/usr/bin/env python3
"""Tiny GGUF files for the CLI error tests (tests/data/cli). Run: python3 tests/scripts/make_cli_fixtures.py"""
import os
import numpy as np
from gguf import GGUFWriter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "cli")
os.makedirs(OUT, exist_ok=True)

w = GGUFWriter(os.path.join(OUT, "unknown_arch.gguf"), "mamba9")  # an architecture nobody supports
w.add_block_count(1)
w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

w = GGUFWriter(os.path.join(OUT, "llama_no_weights.gguf"), "llama")  # valid header, nothing to run
w.add_block_count(2)
w.add_embedding_length(8)
w.add_head_count(2)
w.add_feed_forward_length(16)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
